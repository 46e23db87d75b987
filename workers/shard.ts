// Thread entry point of a shard worker: Piscina calls the default export once per shard start.
import { runShard } from '../src/shard/run.ts';

export default runShard;
