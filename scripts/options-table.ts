// Prints the server options as a markdown table (flag, env, default, description) for the README.
import { serverOptions } from '../src/server/config.ts';

const rows = serverOptions.map((o) => {
  const def = o.defaultText ?? (o.default === undefined ? '' : String(o.default));
  return `| \`${o.flag}\` | \`${o.env}\` | ${def === '' ? '—' : `\`${def}\``} | ${o.description} |`;
});
console.log(['| flag | env | default | what |', '|---|---|---|---|', ...rows].join('\n'));
