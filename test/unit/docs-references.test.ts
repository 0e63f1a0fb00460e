/**
 * What the README and the docs name exists (issue 17): every `npm run <script>`, every `mqlab
 * <command>`, every repository path in backticks and every relative link. Docs drift silently; this
 * makes a renamed file or script a failing test instead of a reader's dead end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, ROOT } from '../../src/local/paths.js';

const DOCS = [
  'README.md',
  'helm/mqlab/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

const scripts = new Set(Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts));
// The commands the CLI dispatches, as its own usage lists them (two spaces, the name, its summary).
const usage = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }).stdout;
const commands = new Set([...usage.matchAll(/^ {2}([\w-]+) {2,}\S/gm)].map((match) => match[1] as string));
/** Top-level folders whose paths the docs cite; a cited path under one of them must exist. */
const TRACKED = /^(?:src|test|bench|docs|scripts|helm|k8s|config|\.ci)\/[\w./-]*[\w/]$/;

interface Finding {
  file: string;
  what: string;
}

/** How many names of each kind were checked (so the test cannot pass by matching nothing). */
const checked = { scripts: 0, commands: 0, paths: 0, links: 0 };

function findingsIn(file: string): Finding[] {
  const text = read(file);
  const missing: Finding[] = [];
  for (const [, script] of text.matchAll(/npm run ([\w:-]+)/g)) {
    checked.scripts += 1;
    if (!scripts.has(script as string)) missing.push({ file, what: `npm run ${script}` });
  }
  for (const [, command] of text.matchAll(/(?:^\s*|`|npx )mqlab ([a-z][\w-]*)/gm)) {
    checked.commands += 1;
    if (!commands.has(command as string)) missing.push({ file, what: `mqlab ${command}` });
  }
  for (const [, quoted] of text.matchAll(/`([^`\s]+)`/g)) {
    const path = (quoted as string).replace(/:\d+$/, '').replace(/#.*$/, '');
    if (!TRACKED.test(path) || path.includes('<')) continue;
    checked.paths += 1;
    if (!existsSync(join(ROOT, path))) missing.push({ file, what: `\`${path}\`` });
  }
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const path = (target as string).replace(/#.*$/, '');
    if (path === '' || /^[a-z]+:/.test(path)) continue;
    checked.links += 1;
    const resolved = join(dirname(join(ROOT, file)), path);
    if (!existsSync(resolved)) missing.push({ file, what: `link ${target} (${relative(ROOT, resolved)})` });
  }
  return missing;
}

describe('what the README and the docs name', () => {
  it('reads the commands and scripts it checks against', () => {
    for (const command of ['up', 'drill', 'partition']) assert.ok(commands.has(command), command);
    assert.ok(scripts.has('test') && scripts.has('start'));
  });

  it('exists: every npm script, mqlab command, repository path and relative link', () => {
    const missing = DOCS.flatMap(findingsIn);
    assert.deepEqual(
      missing.map(({ file, what }) => `${file}: ${what}`),
      [],
    );
    for (const [kind, count] of Object.entries(checked)) assert.ok(count >= 5, `${count} ${kind} found in the docs: the patterns match nothing?`);
  });
});
