// Owns the public surface of src/ring: everything else in the project that touches shared memory uses this.
export { createSharedClock, SharedClock } from './clock.ts';
export { ControlBlock, ControlSlot, createControlBlock } from './control.ts';
export { createLatch, Latch } from './latch.ts';
export { createRing, RingConsumer, RingProducer, ringStats } from './ring.ts';
