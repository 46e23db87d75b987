// Summarises V8 .cpuprofile files (one per thread from `node --cpu-prof`): top functions by self time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const dir = process.argv[2] ?? 'bench/results/profiles';
const top = Number(process.argv[3] ?? 15);
const lines: string[] = [];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort()) {
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]);
    if (n === undefined) continue;
    const where =
      n.callFrame.url === ''
        ? ''
        : ` ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
    const key = `${n.callFrame.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + p.timeDeltas[i]);
    total += p.timeDeltas[i];
  }
  lines.push(
    `### ${file} (${(total / 1e6).toFixed(2)} s sampled)`,
    '',
    '| self % | function |',
    '|---:|---|',
  );
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${((v / total) * 100).toFixed(1)} | \`${k}\` |`);
  }
  lines.push('');
}
console.log(lines.join('\n'));
