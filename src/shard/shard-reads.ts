// Owns a shard's reads: answered at once from what is committed when they can be, else queued and answered
// in attempts that load the sealed row groups they missed (see SealedReader).
import { sealedReadAttemptsMax } from '../constants.ts';
import { ErrorCode, StoreError } from '../errors.ts';
import { findEntity, snapshotJson, stateJson } from './entity-reads.ts';
import type { Memtable } from './memtable.ts';
import type { Outbox } from './outbox.ts';
import {
  Completion,
  Ingress,
  MESSAGE_HEADER_BYTES,
  type QueryRequest,
  type SnapshotRequest,
  type StateRequest,
  type StatsRequest,
  type TailRequest,
  writeHeader,
} from './protocol.ts';
import { type QueryOutput, runQuery } from './query.ts';
import type { SealedReader } from './segments/sealed-reader.ts';
import type { EntityStates } from './state.ts';
import type { StatePublisher } from './state-publisher.ts';
import { tailJson } from './tail.ts';

export interface PendingRead {
  kind: number;
  requestId: number;
  body: string;
}

export interface ReadDeps {
  shard: number;
  memtable: Memtable;
  states: EntityStates;
  sealedReader: SealedReader;
  outbox: Outbox;
  stats(req: StatsRequest | null): Record<string, unknown>;
  published: StatePublisher;
  /** The shard's durable watermark (only durable states are published: a crash cannot take them back). */
  durableSeq(): number;
}

export class ShardReads {
  private readonly deps: ReadDeps;
  private readonly pending: PendingRead[] = [];
  private readonly queryOut: QueryOutput = { buf: Buffer.alloc(0), start: MESSAGE_HEADER_BYTES };

  constructor(deps: ReadDeps) {
    this.deps = deps;
  }

  push(read: PendingRead): void {
    this.pending.push(read);
  }

  /**
   * Answers every queued read (those that must load sealed row groups, or that came while a batch holding
   * a delete was built), then flushes the completions.
   */
  async answerAll(): Promise<void> {
    if (this.pending.length === 0) return;
    const { outbox, sealedReader } = this.deps;
    for (const read of this.pending) {
      try {
        await this.answer(read);
      } catch (err) {
        const e = err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err));
        outbox.sendError(read.requestId, e);
      } finally {
        sealedReader.endRead();
      }
    }
    this.pending.length = 0;
    await outbox.flush();
  }

  /**
   * Answers a read at once when everything it needs is in memory or cached (one attempt, no I/O); false
   * when it touched sealed events not cached (then push() it: answerAll loads them). Errors are answered.
   */
  tryAnswerNow(read: PendingRead): boolean {
    const { outbox, sealedReader } = this.deps;
    try {
      return this.attempt(read);
    } catch (err) {
      const e = err instanceof StoreError ? err : new StoreError(ErrorCode.INTERNAL, String(err));
      outbox.sendError(read.requestId, e);
      return true;
    } finally {
      sealedReader.endRead();
    }
  }

  /** Runs a read; when it touched sealed events not cached, loads them and runs it again. Only a complete attempt is answered. */
  private async answer(read: PendingRead): Promise<void> {
    const { sealedReader } = this.deps;
    for (let attempt = 1; ; attempt++) {
      if (this.attempt(read)) return;
      if (attempt >= sealedReadAttemptsMax) {
        throw new StoreError(
          ErrorCode.INTERNAL,
          `read still missing sealed row groups after ${attempt} attempts`,
        );
      }
      await sealedReader.loadMisses();
    }
  }

  /** One attempt: answers and returns true, or returns false when sealed row groups were missing. */
  private attempt(read: PendingRead): boolean {
    const { outbox, sealedReader, memtable } = this.deps;
    sealedReader.beginAttempt();
    if (read.kind === Ingress.QUERY) {
      // Query pages are written as bytes straight into the message buffer (no JSON strings).
      this.queryOut.buf = outbox.scratchFor(0);
      const req = JSON.parse(read.body) as QueryRequest;
      const end = runQuery(
        memtable,
        this.deps.shard,
        req,
        outbox.frameBytesMaxFor(read.requestId),
        this.queryOut,
      );
      outbox.adopt(this.queryOut.buf);
      if (sealedReader.missed) return false;
      writeHeader(this.queryOut.buf, 0, Completion.JSON_RESULT, read.requestId, 0);
      outbox.send(this.queryOut.buf, end);
      return true;
    }
    const json = this.json(read);
    if (sealedReader.missed) return false;
    outbox.sendJson(Completion.JSON_RESULT, read.requestId, json);
    return true;
  }

  /** Publishes a current-state answer for clients to read directly, once every event it folded is durable. */
  private publishState(req: StateRequest, json: string): void {
    const { memtable, sealedReader } = this.deps;
    // An attempt that met unloaded sealed row groups folded placeholders: it is not an answer.
    if (sealedReader.missed) return;
    const entity = findEntity(memtable, req.tenant, req.entity_id);
    const count = memtable.entities.eventCount(entity);
    if (memtable.entities.eventAt(entity, count - 1) + 1 > this.deps.durableSeq()) return;
    this.deps.published.publish(memtable, entity, json);
  }

  private json(read: PendingRead): string {
    const { memtable, states, outbox } = this.deps;
    switch (read.kind) {
      case Ingress.STATE: {
        const req = JSON.parse(read.body) as StateRequest;
        const json = stateJson(
          memtable,
          states,
          this.deps.shard,
          req,
          outbox.frameBytesMaxFor(read.requestId),
        );
        if (req.asOfUs === undefined && req.includeHistory !== true) this.publishState(req, json);
        return json;
      }
      case Ingress.SNAPSHOT:
        return snapshotJson(memtable, states, JSON.parse(read.body) as SnapshotRequest);
      case Ingress.TAIL:
        return tailJson(
          memtable,
          this.deps.shard,
          JSON.parse(read.body) as TailRequest,
          outbox.frameBytesMaxFor(read.requestId),
        );
      case Ingress.STATS:
        return JSON.stringify(this.deps.stats(JSON.parse(read.body) as StatsRequest | null));
      default:
        throw new StoreError(ErrorCode.INTERNAL, `unknown read kind ${read.kind}`);
    }
  }
}
