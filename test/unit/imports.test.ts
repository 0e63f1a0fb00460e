/** The source's module graph: no import circle (a module that loads back the one that loads it). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../src/local/paths.js';

/** Every .ts file under dir, with the project-relative .ts paths it imports (static, dynamic and type-only). */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) {
        const text = readFileSync(path, 'utf8');
        const targets = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) =>
          relative(ROOT, resolve(dirname(path), (m[1] ?? '').replace(/\.js$/, '.ts'))),
        );
        graph.set(relative(ROOT, path), targets);
      }
    }
  };
  walk(dir);
  return graph;
}

/** The first circle found, as a path a -> b -> ... -> a; undefined when there is none. */
export function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'open') return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('imports', () => {
  it('finds a circle when there is one (the check itself)', () => {
    assert.deepEqual(
      findCycle(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
      ['a', 'b', 'c', 'a'],
    );
    assert.equal(
      findCycle(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
      undefined,
    );
  });

  it('src/ has no import circle (type-only and dynamic imports count too)', () => {
    const graph = importGraph(join(ROOT, 'src'));
    assert.ok(graph.size > 30 && (graph.get('src/lab/drill.ts') ?? []).includes('src/lab/drill-kube.ts'), 'the graph was read');
    assert.equal(findCycle(graph)?.join(' -> '), undefined);
  });
});
