// Owns a store's client table: one row per client slot (state, heartbeat, generation, live-feed progress),
// shared by every thread of the store.
import assert from 'node:assert';
import {
  clientGenerationIndex,
  clientHandedEpochIndex,
  clientHeartbeatIndex,
  clientNudgeIndex,
  clientRowInts,
  clientStateClosed,
  clientStateConnected,
  clientStateFree,
  clientStateHandedOut,
  clientStateIndex,
  clientSubscribedCountIndex,
  clientSubscribedIndex,
  clientTableBytes,
  keepAliveMs,
} from './layout.ts';

export function createClientTable(slots: number, shards: number): SharedArrayBuffer {
  return new SharedArrayBuffer(clientTableBytes(slots, shards));
}

/** Wall-clock seconds: every thread of the process reads the same clock. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * The owner hands out slots and takes them back; a client connects once, beats its heartbeat and marks
 * its row closed when it leaves. A row whose heartbeat is older than the liveness bound belongs to a
 * thread that died (or whose event loop was stuck that long): the owner reclaims it. Slot 0 is the owner's
 * own row, never handed out: only its live-feed words are used.
 */
export class ClientTable {
  readonly #words: Int32Array;
  /** Handed seq per (slot, shard). */
  readonly #handed: BigInt64Array;
  readonly slots: number;
  readonly shards: number;

  constructor(sab: SharedArrayBuffer, shards: number) {
    assert(
      sab instanceof SharedArrayBuffer && Number.isInteger(shards) && shards >= 1,
      'client table: bad arguments',
    );
    const slots = sab.byteLength / clientTableBytes(1, shards);
    assert(Number.isInteger(slots) && slots >= 1, 'client table: expected createClientTable()');
    this.slots = slots;
    this.shards = shards;
    this.#words = new Int32Array(sab, 0, slots * clientRowInts);
    this.#handed = new BigInt64Array(sab, slots * clientRowInts * 4, slots * shards);
  }

  #at(slot: number, index: number): number {
    return slot * clientRowInts + index;
  }

  /** Hands out the first free slot at or above `from` (owner thread only); null when none is free. */
  claim(from: number): { slot: number; generation: number } | null {
    const w = this.#words;
    for (let s = from; s < this.slots; s++) {
      if (Atomics.load(w, this.#at(s, clientStateIndex)) !== clientStateFree) continue;
      const generation = Atomics.add(w, this.#at(s, clientGenerationIndex), 1) + 1;
      this.setSubscribed(s, false);
      for (let k = 0; k < this.shards; k++) Atomics.store(this.#handed, s * this.shards + k, 0n);
      Atomics.store(w, this.#at(s, clientHeartbeatIndex), nowSeconds());
      Atomics.store(w, this.#at(s, clientStateIndex), clientStateHandedOut);
      return { slot: s, generation };
    }
    return null;
  }

  release(slot: number): void {
    this.setSubscribed(slot, false);
    Atomics.store(this.#words, this.#at(slot, clientStateIndex), clientStateFree);
  }

  /** A handle's one connect: true when the slot is still handed out under that generation. */
  connect(slot: number, generation: number): boolean {
    if (!this.owns(slot, generation)) return false;
    const ok =
      Atomics.compareExchange(
        this.#words,
        this.#at(slot, clientStateIndex),
        clientStateHandedOut,
        clientStateConnected,
      ) === clientStateHandedOut;
    if (ok) this.beat(slot, generation);
    return ok;
  }

  /** True while the slot still belongs to this generation's client. */
  owns(slot: number, generation: number): boolean {
    return Atomics.load(this.#words, this.#at(slot, clientGenerationIndex)) === generation;
  }

  /** Returns false (and writes nothing) when the slot was reclaimed and handed to someone else. */
  beat(slot: number, generation: number): boolean {
    if (!this.owns(slot, generation)) return false;
    Atomics.store(this.#words, this.#at(slot, clientHeartbeatIndex), nowSeconds());
    return true;
  }

  markClosed(slot: number, generation: number): void {
    if (!this.owns(slot, generation)) return;
    this.setSubscribed(slot, false);
    Atomics.store(this.#words, this.#at(slot, clientStateIndex), clientStateClosed);
  }

  /** True when the slot is taken but its client left, or has not beaten for more than `deadAfterMs`. */
  isGone(slot: number, deadAfterMs: number): boolean {
    const state = Atomics.load(this.#words, this.#at(slot, clientStateIndex));
    if (state === clientStateClosed) return true;
    if (state === clientStateFree) return false;
    return (
      (nowSeconds() - Atomics.load(this.#words, this.#at(slot, clientHeartbeatIndex))) * 1000 > deadAfterMs
    );
  }

  // --- live-feed progress: lets an append wait until subscribers on every thread have its events ---

  setSubscribed(slot: number, on: boolean): void {
    const want = on ? 1 : 0;
    if (
      Atomics.compareExchange(this.#words, this.#at(slot, clientSubscribedIndex), 1 - want, want) ===
      1 - want
    )
      Atomics.add(this.#words, clientSubscribedCountIndex, on ? 1 : -1);
  }

  /** Slots with live subscriptions right now. */
  subscribedCount(): number {
    return Atomics.load(this.#words, clientSubscribedCountIndex);
  }

  isSubscribed(slot: number): boolean {
    return Atomics.load(this.#words, this.#at(slot, clientSubscribedIndex)) !== 0;
  }

  /** Publishes that the slot's subscribers were handed shard k's events up to `seq`. */
  publishHanded(slot: number, shard: number, seq: number): void {
    const at = slot * this.shards + shard;
    if (Number(Atomics.load(this.#handed, at)) >= seq) return;
    Atomics.store(this.#handed, at, BigInt(seq));
    Atomics.add(this.#words, this.#at(slot, clientHandedEpochIndex), 1);
    Atomics.notify(this.#words, this.#at(slot, clientHandedEpochIndex));
  }

  handed(slot: number, shard: number): number {
    return Number(Atomics.load(this.#handed, slot * this.shards + shard));
  }

  handedEpoch(slot: number): number {
    return Atomics.load(this.#words, this.#at(slot, clientHandedEpochIndex));
  }

  /**
   * Resolves when the slot publishes progress (or the timeout passes); the event loop stays free, and alive
   * (an append waits here).
   */
  async waitHanded(slot: number, observedEpoch: number, timeoutMs: number): Promise<void> {
    const r = Atomics.waitAsync(
      this.#words,
      this.#at(slot, clientHandedEpochIndex),
      observedEpoch,
      timeoutMs,
    );
    if (!r.async) return;
    const keep = setTimeout(() => {}, keepAliveMs(timeoutMs));
    try {
      await r.value;
    } finally {
      clearTimeout(keep);
    }
  }

  nudge(slot: number): void {
    Atomics.add(this.#words, this.#at(slot, clientNudgeIndex), 1);
    Atomics.notify(this.#words, this.#at(slot, clientNudgeIndex));
  }

  nudges(slot: number): number {
    return Atomics.load(this.#words, this.#at(slot, clientNudgeIndex));
  }

  /** Resolves when another thread nudges the slot, or after timeoutMs. */
  async waitNudge(slot: number, observed: number, timeoutMs: number): Promise<void> {
    const r = Atomics.waitAsync(this.#words, this.#at(slot, clientNudgeIndex), observed, timeoutMs);
    if (r.async) await r.value;
  }
}
