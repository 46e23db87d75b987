// ShardLanes: fair draining across lanes, answers routed by the lane in the request id, restart skips.
import { describe, expect, it } from 'vitest';
import { laneFramesPerTurn, laneReadsPerTurn } from '../../src/constants.ts';
import { createDoorbell, Doorbell } from '../../src/ring/doorbell.ts';
import { createRing, RingConsumer, RingProducer } from '../../src/ring/ring.ts';
import { ShardLanes } from '../../src/shard/lanes.ts';
import {
  Completion,
  laneIdShift,
  MESSAGE_HEADER_BYTES,
  restartedReadRing,
  writeHeader,
} from '../../src/shard/protocol.ts';

function lane(slot: number) {
  const ingress = createRing(1 << 20);
  const reads = createRing(1 << 16);
  const completion = createRing(1 << 16);
  return {
    spec: { slot, ingress, reads, completion },
    producer: new RingProducer(ingress),
    reader: new RingProducer(reads),
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
    const lanes = new ShardLanes(new Doorbell(createDoorbell()), new Doorbell(createDoorbell()));
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
    const lanes = new ShardLanes(new Doorbell(createDoorbell()), new Doorbell(createDoorbell()));
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

  it('a restarted shard skips what a lane left unread, in both rings, and tells the client where', () => {
    const l = lane(2);
    for (let i = 0; i < 3; i++) l.producer.tryPush(frame((2 << laneIdShift) | i));
    for (let i = 0; i < 2; i++) l.reader.tryPush(frame((2 << laneIdShift) | (10 + i)));
    const position = l.producer.position;
    const readPosition = l.reader.position;
    const lanes = new ShardLanes(new Doorbell(createDoorbell()), new Doorbell(createDoorbell()));
    lanes.add(l.spec, true);
    expect(lanes.read()).toBeNull();
    expect(lanes.takeReads(() => {})).toBe(0);
    const notice = Buffer.from(l.answers.read()!);
    expect(notice[0]).toBe(Completion.RESTARTED);
    expect(notice.readUInt32LE(4) & restartedReadRing).toBe(0);
    expect(notice.readUInt32LE(8)).toBe(position);
    const readNotice = Buffer.from(l.answers.read()!);
    expect(readNotice[0]).toBe(Completion.RESTARTED);
    expect(readNotice.readUInt32LE(4) & restartedReadRing).toBe(restartedReadRing);
    expect(readNotice.readUInt32LE(8)).toBe(readPosition);
  });

  it('reads are taken from every lane apart from the writes in front of them, at most laneReadsPerTurn each', () => {
    const lanes = new ShardLanes(new Doorbell(createDoorbell()), new Doorbell(createDoorbell()));
    const a = lane(0);
    const b = lane(1);
    lanes.add(a.spec, false);
    lanes.add(b.spec, false);
    for (let i = 0; i < 100; i++) expect(a.producer.tryPush(frame(i))).toBe(true);
    for (let i = 0; i < laneReadsPerTurn + 5; i++) expect(a.reader.tryPush(frame(1000 + i))).toBe(true);
    expect(b.reader.tryPush(frame((1 << laneIdShift) | 7))).toBe(true);
    expect(lanes.hasReads()).toBe(true);
    const taken: number[] = [];
    const take = (f: Uint8Array) => taken.push(Buffer.from(f).readUInt32LE(4));
    expect(lanes.takeReads(take)).toBe(laneReadsPerTurn + 1);
    expect(taken[0]).toBe(1000);
    expect(taken).toContain(((1 << laneIdShift) | 7) >>> 0);
    expect(lanes.takeReads(take)).toBe(5);
    expect(lanes.hasReads()).toBe(false);
    // The writes are all still there, in order.
    expect(Buffer.from(lanes.read()!).readUInt32LE(4)).toBe(0);
  });
});
