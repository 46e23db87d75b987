// SecurityOwner / SecurityReplica: a published change is applied before the next sync() returns, in order, once.
import { describe, expect, it } from 'vitest';
import {
  type EpochMessage,
  SecurityOwner,
  SecurityReplica,
} from '../../../src/server/threads/security-channel.ts';

function replicaOf(owner: SecurityOwner, id: number, applied: EpochMessage[], acks: number[]) {
  const { port, epoch } = owner.attach(id);
  return new SecurityReplica({
    buffer: owner.buffer,
    port,
    epoch,
    apply: (m) => applied.push(m),
    ack: (e) => {
      acks.push(e);
      owner.acked(id, e);
    },
  });
}

const event = (id: string) => ({
  id,
  event_type: 'auth.key.revoked',
  entity_id: `key:${id}`,
  payload: { id },
});

describe('security channel', () => {
  it('sync() takes every change published before it, in order, without waiting for the event loop', async () => {
    const owner = new SecurityOwner();
    const applied: EpochMessage[] = [];
    const acks: number[] = [];
    const replica = replicaOf(owner, 0, applied, acks);
    replica.sync();
    expect(applied).toEqual([]);
    expect(owner.publish({ auth: [event('a')] })).toBe(1);
    expect(owner.publish({ auth: [event('b')] })).toBe(2);
    // No await between publish and sync: the changes are on the port, and sync reads them synchronously.
    replica.sync();
    expect(applied.map((m) => [m.epoch, m.auth?.[0].id])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    expect(replica.epoch).toBe(2);
    expect(acks).toEqual([1, 2]);
    await expect(owner.settled(2, 1_000)).resolves.toBe(true);
    // Nothing new: sync is a load and nothing else; the port's own delivery later applies nothing twice.
    replica.sync();
    await new Promise((r) => setImmediate(r));
    expect(applied).toHaveLength(2);
    replica.close();
    owner.close();
  });

  it('a replica that started from a later state skips changes it already has; idle replicas apply from the port event', async () => {
    const owner = new SecurityOwner();
    owner.publish({ auth: [event('before')] });
    const applied: EpochMessage[] = [];
    const replica = replicaOf(owner, 0, applied, []);
    expect(replica.epoch).toBe(1);
    const settled = owner.settled(owner.publish({ tenant: { events: [], slots: [['t1', 4]] } }), 5_000);
    // Without a request to sync it, the replica applies the change when its event loop takes the message.
    await expect(settled).resolves.toBe(true);
    expect(applied.map((m) => m.epoch)).toEqual([2]);
    expect(applied[0].tenant?.slots).toEqual([['t1', 4]]);
    replica.close();
    owner.close();
  });

  it('settled() stops waiting for a replica that is gone, and gives up (false) on one that never answers', async () => {
    const owner = new SecurityOwner();
    const gone = owner.attach(1);
    const silent = owner.attach(2);
    const epoch = owner.publish({ auth: [event('x')] });
    const waiting = owner.settled(epoch, 60_000);
    owner.detach(1);
    owner.detach(2);
    await expect(waiting).resolves.toBe(true);
    const mute = owner.attach(3);
    await expect(owner.settled(owner.publish({ auth: [event('y')] }), 20)).resolves.toBe(false);
    for (const p of [gone.port, silent.port, mute.port]) p.close();
    owner.close();
  });
});
