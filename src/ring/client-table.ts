// Owns a store's client table: one row per client slot (state, heartbeat, generation), shared by every thread.
import assert from 'node:assert';
import {
  clientGenerationIndex,
  clientHeartbeatIndex,
  clientRowInts,
  clientStateClosed,
  clientStateConnected,
  clientStateFree,
  clientStateHandedOut,
  clientStateIndex,
} from './layout.ts';

export function createClientTable(slots: number): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * clientRowInts * Int32Array.BYTES_PER_ELEMENT);
}

/** Wall-clock seconds: every thread of the process reads the same clock. */
function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * The owner hands out slots and takes them back; a client connects once, beats its heartbeat and marks
 * its row closed when it leaves. A row whose heartbeat is older than the liveness bound belongs to a
 * thread that died (or whose event loop was stuck that long): the owner reclaims it.
 */
export class ClientTable {
  readonly #words: Int32Array;
  readonly slots: number;

  constructor(sab: SharedArrayBuffer) {
    assert(
      sab instanceof SharedArrayBuffer && sab.byteLength % (clientRowInts * 4) === 0,
      'client table: expected createClientTable()',
    );
    this.#words = new Int32Array(sab);
    this.slots = sab.byteLength / (clientRowInts * 4);
  }

  /** Hands out the first free slot at or above `from` (owner thread only); -1 when none is free. */
  claim(from: number): { slot: number; generation: number } | null {
    const w = this.#words;
    for (let s = from; s < this.slots; s++) {
      const at = s * clientRowInts;
      if (Atomics.load(w, at + clientStateIndex) !== clientStateFree) continue;
      const generation = Atomics.add(w, at + clientGenerationIndex, 1) + 1;
      Atomics.store(w, at + clientHeartbeatIndex, nowSeconds());
      Atomics.store(w, at + clientStateIndex, clientStateHandedOut);
      return { slot: s, generation };
    }
    return null;
  }

  release(slot: number): void {
    Atomics.store(this.#words, slot * clientRowInts + clientStateIndex, clientStateFree);
  }

  /** A handle's one connect: true when the slot is still handed out under that generation. */
  connect(slot: number, generation: number): boolean {
    const at = slot * clientRowInts;
    if (!this.owns(slot, generation)) return false;
    const ok =
      Atomics.compareExchange(
        this.#words,
        at + clientStateIndex,
        clientStateHandedOut,
        clientStateConnected,
      ) === clientStateHandedOut;
    if (ok) this.beat(slot, generation);
    return ok;
  }

  /** True while the slot still belongs to this generation's client. */
  owns(slot: number, generation: number): boolean {
    return Atomics.load(this.#words, slot * clientRowInts + clientGenerationIndex) === generation;
  }

  /** Returns false (and writes nothing) when the slot was reclaimed and handed to someone else. */
  beat(slot: number, generation: number): boolean {
    if (!this.owns(slot, generation)) return false;
    Atomics.store(this.#words, slot * clientRowInts + clientHeartbeatIndex, nowSeconds());
    return true;
  }

  markClosed(slot: number, generation: number): void {
    const at = slot * clientRowInts;
    if (this.owns(slot, generation)) Atomics.store(this.#words, at + clientStateIndex, clientStateClosed);
  }

  /** True when the slot is taken but its client left, or has not beaten for more than `deadAfterMs`. */
  isGone(slot: number, deadAfterMs: number): boolean {
    const at = slot * clientRowInts;
    const state = Atomics.load(this.#words, at + clientStateIndex);
    if (state === clientStateClosed) return true;
    if (state === clientStateFree) return false;
    return (nowSeconds() - Atomics.load(this.#words, at + clientHeartbeatIndex)) * 1000 > deadAfterMs;
  }
}
