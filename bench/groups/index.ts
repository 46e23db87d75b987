// Owns the list of groups in report order (the order of groupIds in lib/args.ts).
import { groupIds } from '../lib/args.ts';
import { concurrentGroup } from './concurrent.ts';
import type { Group } from './group.ts';
import { httpGroup } from './http.ts';
import { indexesGroup } from './indexes.ts';
import { ingestGroup } from './ingest.ts';
import { limitsGroup } from './limits.ts';
import { memoryGroup } from './memory.ts';
import { overheadGroup } from './overhead.ts';
import { peersGroup } from './peers.ts';
import { queriesGroup } from './queries.ts';
import { readsUnderLoadGroup } from './reads-under-load.ts';
import { scalingGroup } from './scaling.ts';
import { stateGroup } from './state.ts';
import { storageGroup } from './storage.ts';

const all: Group[] = [
  ingestGroup,
  queriesGroup,
  stateGroup,
  concurrentGroup,
  storageGroup,
  indexesGroup,
  memoryGroup,
  overheadGroup,
  peersGroup,
  limitsGroup,
  httpGroup,
  scalingGroup,
  readsUnderLoadGroup,
];

export const groups: readonly Group[] = groupIds.map((id) => {
  const g = all.find((x) => x.id === id);
  if (g === undefined) throw new Error(`group ${id} is listed in lib/args.ts but not in groups/index.ts`);
  return g;
});
