// Owns the row shapes shared by the report's tables: ours beside the original's figure, ours beside a peer's.
import { advantage, originalFootnote } from './original.ts';
import { type Cell, measure, type Table, type Unit } from './results.ts';

export const originalColumns = ['case', 'ours', 'original (Rust)', 'ours vs original (>1 = ours better)'];

/** A row of ours beside the original's figure (same unit), with how many times better ours is. */
export function originalRow(
  name: string,
  ours: number,
  theirs: number | null,
  unit: Unit,
  better: 'higher' | 'lower',
): Cell[] {
  const ratio = theirs === null ? null : advantage(ours, theirs, better);
  return [
    name,
    measure(ours, unit),
    theirs === null ? null : measure(theirs, unit),
    ratio === null ? null : measure(ratio, 'x'),
  ];
}

export function originalTable(title: string, rows: Cell[][], notes: string[] = []): Table {
  return { title, columns: originalColumns, rows, notes: [...notes, originalFootnote] };
}
