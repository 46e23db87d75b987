// Owns the shape of a write-scaling run's results (the JSON written beside the table and charts).
import type { Machine } from '../lib/results.ts';

export interface RoundsResult {
  /** Measured rounds (after the warm-up rounds). */
  rounds: number;
  /** Median time from the barrier's release to the last writer's last acknowledged append, microseconds. */
  roundUs: number;
  /** writers x events per round / roundUs. */
  eventsPerSecond: number;
  /** Median time from the release until the last writer started: the barrier's own share of a round. */
  startLagUs: number;
}

export interface SustainedResult {
  /** Median over the windows of acknowledged events per second. */
  eventsPerSecond: number;
  windows: number[];
  /** Appends each writer kept outstanding. */
  inFlight: number;
  /** Events per fdatasync over the measured part (the store's counters), 0 when nothing was synced. */
  eventsPerFsync: number;
}

export interface ScalingRow {
  shards: number;
  writers: number;
  /** writers + shards > cores: the threads share cores, so the figure says little about scaling. */
  oversubscribed: boolean;
  rounds: RoundsResult;
  sustained: SustainedResult;
}

export interface ScalingResults {
  format: 1;
  date: string;
  command: string;
  quick: boolean;
  machine: Machine;
  /** How the writers ran: worker threads with their own clients, or on the store's thread. */
  writersKind: string;
  durability: string;
  roundEvents: number;
  /** Single-event appends outstanding per writer in a round. */
  roundInFlight: number;
  batch: number;
  windowMs: number;
  rows: ScalingRow[];
  warnings: string[];
  seconds: number;
}
