// Owns the shared-memory control block between the bench's coordinator and its writers: a command barrier
// (every writer released at once), per-round start/end stamps, acknowledged-event counters and a stop flag.
// Neither side ever blocks (Atomics.waitAsync): writers' store clients and the store's owner need their event
// loops while they wait.

/** Int32 slots. */
const cmdSeqSlot = 0; // bumped by the coordinator for every command; writers wait on it
const cmdSlot = 1; // the command itself
const readySlot = 2; // writers connected and waiting for their first command
const doneSlot = 3; // commands finished, summed over writers (cumulative, so no reset race between rounds)
const stopSlot = 4; // (b): 1 = stop appending and report done
const failedSlot = 5; // writers that failed
const int32Slots = 8;
/** BigInt64 slots after the Int32 header: the release stamp, then per writer start, end and acknowledged events. */
const releaseSlot = 0;
const perWriterSlots = 3;
const startOffset = 0;
const endOffset = 1;
const ackedOffset = 2;

export const Command = Object.freeze({ round: 1, sustain: 2, exit: 3 } as const);
export type CommandKind = (typeof Command)[keyof typeof Command];

/** A wait that took longer than this is a hung writer or store: fail the run instead of hanging it. */
export const controlWaitMsDefault = 120_000;

/** Nanoseconds on the monotonic clock, which every thread of the process shares (unlike performance.now). */
export function nowNs(): bigint {
  return process.hrtime.bigint();
}

export interface RoundStamps {
  /** When the coordinator released the round. */
  releaseNs: bigint;
  /** Per writer: when it saw the release, and when its last append of the round was acknowledged. */
  startNs: bigint[];
  endNs: bigint[];
}

export class Control {
  readonly buffer: SharedArrayBuffer;
  readonly writers: number;
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;

  /** A new block for `writers` writers, or (given `buffer`) a view of one made elsewhere. */
  constructor(writers: number, buffer?: SharedArrayBuffer) {
    const bytes = int32Slots * 4 + (1 + writers * perWriterSlots) * 8;
    this.buffer = buffer ?? new SharedArrayBuffer(bytes);
    if (this.buffer.byteLength !== bytes)
      throw new Error(`control block for ${writers} writers has the wrong size`);
    this.writers = writers;
    this.i32 = new Int32Array(this.buffer, 0, int32Slots);
    this.i64 = new BigInt64Array(this.buffer, int32Slots * 4);
  }

  // --- writer side ---

  ready(): void {
    Atomics.add(this.i32, readySlot, 1);
    Atomics.notify(this.i32, readySlot);
  }

  /** Waits for the command after `seq` (the last one this writer ran; 0 at first). */
  async nextCommand(seq: number): Promise<{ seq: number; kind: CommandKind }> {
    await waitUntil(this.i32, cmdSeqSlot, (v) => v !== seq, Number.POSITIVE_INFINITY);
    // The coordinator writes the command before it bumps the sequence, so this read sees it.
    return { seq: Atomics.load(this.i32, cmdSeqSlot), kind: Atomics.load(this.i32, cmdSlot) as CommandKind };
  }

  stampStart(writer: number): void {
    Atomics.store(this.i64, 1 + writer * perWriterSlots + startOffset, nowNs());
  }

  stampEnd(writer: number): void {
    Atomics.store(this.i64, 1 + writer * perWriterSlots + endOffset, nowNs());
  }

  addAcked(writer: number, events: number): void {
    Atomics.add(this.i64, 1 + writer * perWriterSlots + ackedOffset, BigInt(events));
  }

  stopped(): boolean {
    return Atomics.load(this.i32, stopSlot) === 1;
  }

  /** A writer finished its command (also after a failure, so that nobody waits for it). */
  done(): void {
    Atomics.add(this.i32, doneSlot, 1);
    Atomics.notify(this.i32, doneSlot);
  }

  /** Marks a failure and wakes the coordinator; the failure itself travels beside (message or exception). */
  fail(): void {
    Atomics.add(this.i32, failedSlot, 1);
    Atomics.notify(this.i32, doneSlot);
    Atomics.notify(this.i32, readySlot);
  }

  // --- coordinator side ---

  failed(): boolean {
    return Atomics.load(this.i32, failedSlot) > 0;
  }

  doneCount(): number {
    return Atomics.load(this.i32, doneSlot);
  }

  /** Releases every writer at once with `kind`; the release stamp is taken just before the wake-up. */
  release(kind: CommandKind): void {
    if (kind === Command.sustain) Atomics.store(this.i32, stopSlot, 0);
    Atomics.store(this.i32, cmdSlot, kind);
    Atomics.store(this.i64, releaseSlot, nowNs());
    Atomics.add(this.i32, cmdSeqSlot, 1);
    Atomics.notify(this.i32, cmdSeqSlot);
  }

  stop(): void {
    Atomics.store(this.i32, stopSlot, 1);
  }

  /** Resolves once all writers are ready, `done` reaches `target`, or a writer failed (the caller checks). */
  waitReady(timeoutMs = controlWaitMsDefault): Promise<void> {
    return waitUntil(
      this.i32,
      readySlot,
      (v) => v >= this.writers || this.failed(),
      performance.now() + timeoutMs,
      'writers to connect',
    );
  }

  waitDone(target: number, timeoutMs = controlWaitMsDefault): Promise<void> {
    return waitUntil(
      this.i32,
      doneSlot,
      (v) => v >= target || this.failed(),
      performance.now() + timeoutMs,
      'writers to finish',
    );
  }

  roundStamps(): RoundStamps {
    const at = (w: number, offset: number) => Atomics.load(this.i64, 1 + w * perWriterSlots + offset);
    const ws = Array.from({ length: this.writers }, (_, w) => w);
    return {
      releaseNs: Atomics.load(this.i64, releaseSlot),
      startNs: ws.map((w) => at(w, startOffset)),
      endNs: ws.map((w) => at(w, endOffset)),
    };
  }

  /** Events acknowledged so far in (b), over all writers. */
  ackedTotal(): number {
    let sum = 0n;
    for (let w = 0; w < this.writers; w++)
      sum += Atomics.load(this.i64, 1 + w * perWriterSlots + ackedOffset);
    return Number(sum);
  }
}

/** Waits (without blocking the thread) until `ok(value of slot)` holds; throws past `deadline`. */
async function waitUntil(
  i32: Int32Array,
  slot: number,
  ok: (value: number) => boolean,
  deadline: number,
  what = 'the coordinator',
): Promise<void> {
  for (;;) {
    const v = Atomics.load(i32, slot);
    if (ok(v)) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    const w = Atomics.waitAsync(i32, slot, v, Number.isFinite(left) ? left : undefined);
    if (w.async) await w.value;
  }
}
