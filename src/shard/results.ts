// Owns the result records of a group commit: one APPEND_RESULT message per atomic group, written from the
// batch's outcomes after the WAL write (or its failure).

import type { StoreError } from '../errors.ts';
import { OFF_ID, readTimestampUs, readVersion } from '../event/codec.ts';
import { isDiskFull } from '../io/file-io.ts';
import type { F64List, U32List } from './growable.ts';
import type { Memtable } from './memtable.ts';
import type { Outbox } from './outbox.ts';
import {
  Completion,
  MESSAGE_HEADER_BYTES,
  Outcome,
  RESULT_OFF_ID,
  RESULT_OFF_OUTCOME,
  RESULT_OFF_SEQ,
  RESULT_OFF_TIMESTAMP,
  RESULT_OFF_VERSION,
  RESULT_RECORD_BYTES,
  writeHeader,
} from './protocol.ts';

export interface Group {
  requestId: number;
  /** Index of the group's first event in the batch outcome arrays. */
  first: number;
  count: number;
}

export class BatchResults {
  /** Ids of the batch's duplicates, 16 bytes per outcome index (their originals may be sealed). */
  private duplicateIds = Buffer.alloc(16 * 1024);

  keepDuplicateId(outcome: number, chunk: Buffer, idOffset: number): void {
    const at = outcome * 16;
    if (this.duplicateIds.length < at + 16) {
      const grown = Buffer.alloc(Math.max(at + 16, this.duplicateIds.length * 2));
      this.duplicateIds.copy(grown);
      this.duplicateIds = grown;
    }
    chunk.copy(this.duplicateIds, at, idOffset, idOffset + 16);
  }

  /**
   * Sends one message per group. `outcomeRef` holds the seq of written or duplicate events and the actual
   * version of a conflict; an I/O error overrides every outcome (nothing of the batch was acknowledged).
   */
  write(
    outbox: Outbox,
    memtable: Memtable,
    groups: readonly Group[],
    outcomes: U32List,
    outcomeRef: F64List,
    ioError: StoreError | null,
  ): void {
    for (const group of groups) {
      const bytes = MESSAGE_HEADER_BYTES + group.count * RESULT_RECORD_BYTES;
      const buf = outbox.scratchFor(bytes);
      writeHeader(buf, 0, Completion.APPEND_RESULT, group.requestId, group.count);
      for (let k = 0; k < group.count; k++) {
        const at = MESSAGE_HEADER_BYTES + k * RESULT_RECORD_BYTES;
        const o = group.first + k;
        let outcome = outcomes.data[o];
        if (ioError !== null) outcome = isDiskFull(ioError) ? Outcome.DISK_FULL : Outcome.IO_ERROR;
        buf.fill(0, at, at + RESULT_RECORD_BYTES);
        buf[at + RESULT_OFF_OUTCOME] = outcome;
        if (outcome === Outcome.OK || outcome === Outcome.DUPLICATE) {
          this.eventResult(memtable, buf, at, outcomeRef.data[o], o);
        } else if (outcome === Outcome.CONFLICT) {
          buf.writeUInt32LE(outcomeRef.data[o], at + RESULT_OFF_VERSION);
        }
      }
      outbox.send(buf, bytes);
    }
  }

  /** Fills a result record from the committed event with sequence `seq`. */
  private eventResult(memtable: Memtable, buf: Buffer, at: number, seq: number, outcome: number): void {
    const i = seq - 1;
    if (memtable.isSealed(i)) {
      // Only a duplicate's original can be sealed: answer from the indexes and the retry's own id.
      buf.writeUInt32LE(memtable.versionAt(i), at + RESULT_OFF_VERSION);
      buf.writeDoubleLE(seq, at + RESULT_OFF_SEQ);
      buf.writeDoubleLE(memtable.tsOf.data[i], at + RESULT_OFF_TIMESTAMP);
      this.duplicateIds.copy(buf, at + RESULT_OFF_ID, outcome * 16, outcome * 16 + 16);
      return;
    }
    const chunk = memtable.chunkAt(i);
    const off = memtable.offsetAt(i);
    buf.writeUInt32LE(readVersion(chunk, off), at + RESULT_OFF_VERSION);
    buf.writeDoubleLE(seq, at + RESULT_OFF_SEQ);
    buf.writeDoubleLE(readTimestampUs(chunk, off), at + RESULT_OFF_TIMESTAMP);
    chunk.copy(buf, at + RESULT_OFF_ID, off + OFF_ID, off + OFF_ID + 16);
  }
}
