// ShardLanes: fair draining across lanes, answers routed by the lane in the request id, restart skips.
import { describe, expect, it } from 'vitest';
import { laneFramesPerTurn } from '../../src/constants.ts';
import { createDoorbell, Doorbell } from '../../src/ring/doorbell.ts';
import { createRing, RingConsumer, RingProducer } from '../../src/ring/ring.ts';
import { ShardLanes } from '../../src/shard/lanes.ts';
import { Completion, laneIdShift, MESSAGE_HEADER_BYTES, writeHeader } from '../../src/shard/protocol.ts';

function lane(slot: number) {
  const ingress = createRing(1 << 20);
  const completion = createRing(1 << 16);
  return {
    spec: { slot, ingress, completion },
    producer: new RingProducer(ingress),
    answers: new RingConsumer(completion),
  };
}

function frame(tag: number): Uint8Array {
  const buf = Buffer.alloc(MESSAGE_HEADER_BYTES);
  writeHeader(buf, 0, 2, tag, 0);
  return buf;
}

describe('ShardLanes', () => {
  it('a lane full of frames cannot starve another: each gets at most laneFramesPerTurn in a row', () => {
    const lanes = new ShardLanes(new Doorbell(createDoorbell()));
    const busy = lane(0);
    const quiet = lane(1);
    lanes.add(busy.spec, false);
    lanes.add(quiet.spec, false);
    for (let i = 0; i < 5 * laneFramesPerTurn; i++) expect(busy.producer.tryPush(frame(i))).toBe(true);
    expect(quiet.producer.tryPush(frame(1 << laneIdShift))).toBe(true);
    const order: number[] = [];
    for (let f = lanes.read(); f !== null; f = lanes.read())
      order.push(Buffer.from(f).readUInt32LE(4) >>> laneIdShift);
    expect(order).toHaveLength(5 * laneFramesPerTurn + 1);
    expect(order.indexOf(1)).toBe(laneFramesPerTurn);
  });

  it('answers go to the lane named in the request id; a removed lane drops them', () => {
    const lanes = new ShardLanes(new Doorbell(createDoorbell()));
    const a = lane(0);
    const b = lane(3);
    lanes.add(a.spec, false);
    lanes.add(b.spec, false);
    lanes.sendJson(Completion.JSON_RESULT, (3 << laneIdShift) | 9, '{"x":1}');
    lanes.sendJson(Completion.JSON_RESULT, 5, '{"y":2}');
    const gotB = b.answers.read();
    expect(gotB).not.toBeNull();
    expect(Buffer.from(gotB!).readUInt32LE(4)).toBe(((3 << laneIdShift) | 9) >>> 0);
    expect(Buffer.from(a.answers.read()!).readUInt32LE(4)).toBe(5);
    lanes.remove(3);
    lanes.sendJson(Completion.JSON_RESULT, (3 << laneIdShift) | 10, '{}');
    b.answers.release();
    expect(b.answers.read()).toBeNull();
  });

  it('a restarted shard skips what a lane left unread and tells the client where', () => {
    const l = lane(2);
    for (let i = 0; i < 3; i++) l.producer.tryPush(frame((2 << laneIdShift) | i));
    const position = l.producer.position;
    const lanes = new ShardLanes(new Doorbell(createDoorbell()));
    lanes.add(l.spec, true);
    expect(lanes.read()).toBeNull();
    const notice = Buffer.from(l.answers.read()!);
    expect(notice[0]).toBe(Completion.RESTARTED);
    expect(notice.readUInt32LE(8)).toBe(position);
  });
});
