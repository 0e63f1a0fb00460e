/** A small Dockerfile reader for the tests: stages and their instructions (no Docker engine here). */

export interface Instruction {
  keyword: string;
  args: string;
  /** The JSON array of an exec-form instruction (ENTRYPOINT ["node", ...]); undefined for shell form. */
  exec?: string[];
}

export interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
}

export interface Dockerfile {
  stages: Stage[];
  final: Stage;
  shellFormEntrypoint: boolean;
}

function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`not a JSON string array: ${args}`);
  return parsed;
}

export function parseDockerfile(text: string): Dockerfile {
  // Join continuation lines, drop comments and blank lines (parser directives are comments too).
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && /^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const stages: Stage[] = [];
  let shellFormEntrypoint = false;
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/s.exec(line);
    if (!match) throw new Error(`cannot read Dockerfile line: ${line}`);
    const keyword = (match[1] ?? '').toUpperCase();
    const args = match[2] ?? '';
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`cannot read FROM ${args}`);
      stages.push({ image: from[1] ?? '', ...(from[2] ? { name: from[2] } : {}), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${keyword} before FROM`);
    const instruction: Instruction = { keyword, args };
    if (keyword === 'ENTRYPOINT' || keyword === 'CMD') {
      const exec = execForm(args);
      if (exec) instruction.exec = exec;
      if (keyword === 'ENTRYPOINT') {
        if (exec) stage.entrypoint = exec;
        else shellFormEntrypoint = true;
      } else if (exec) {
        stage.cmd = exec;
      }
    }
    if (keyword === 'USER') stage.user = args.trim();
    stage.instructions.push(instruction);
  }
  const final = stages.at(-1);
  if (!final) throw new Error('no FROM in Dockerfile');
  return { stages, final, shellFormEntrypoint };
}
