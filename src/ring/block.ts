// Owns blocking the calling thread for a given time (Atomics.wait on a private word), for a fault plan's
// slow disk: the thread is stuck as in a real slow fdatasync, its event loop included.
const word = new Int32Array(new SharedArrayBuffer(4));

export function blockThreadMs(ms: number): void {
  Atomics.wait(word, 0, 0, ms);
}
