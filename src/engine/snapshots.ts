// Owns the shapes of entity reads as shards answer them, and their conversion to the public types.
import type { StoredEvent } from '../event/codec.ts';
import { formatTimestampUs } from '../event/timestamp.ts';
import type { EntitySnapshot, SnapshotMeta } from './types.ts';

/** A shard's answer to a state read (microsecond times; history only when asked for). */
export interface ShardState {
  entity_id: string;
  tenant_id: string;
  version: number;
  event_count: number;
  last_updated_us: number;
  current_state: Record<string, unknown>;
  history?: StoredEvent[];
  history_truncated?: boolean;
  history_from_version?: number;
}

/** A shard's description of a kept snapshot (microsecond times). */
export interface ShardSnapshot {
  snapshot_id: string;
  entity_id: string;
  tenant_id: string;
  version: number;
  event_count: number;
  last_updated_us: number;
  created_us: number;
  size_bytes: number;
}

export function snapshotMetaOf(s: ShardSnapshot): SnapshotMeta {
  const asOf = formatTimestampUs(s.last_updated_us);
  return {
    snapshot_id: s.snapshot_id,
    entity_id: s.entity_id,
    tenant_id: s.tenant_id,
    version: s.version,
    event_count: s.event_count,
    as_of: asOf,
    last_updated: asOf,
    created_at: formatTimestampUs(s.created_us),
    size_bytes: s.size_bytes,
  };
}

export function snapshotOf(s: ShardSnapshot & { state: Record<string, unknown> }): EntitySnapshot {
  return { ...snapshotMetaOf(s), state: s.state };
}
