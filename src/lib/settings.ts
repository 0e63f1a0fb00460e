import { parseArgs } from 'node:util';
import { z } from 'zod';

/**
 * Settings come from a command-line flag, else an environment variable, else a default, and are
 * validated once at start so a bad value stops the process with a message naming the flag and the
 * variable, instead of failing later at first use.
 */
export interface Setting<T> {
  flag: string;
  env: string;
  schema: z.ZodType<T>;
  default?: string;
  description: string;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type SettingsOf<S extends SettingsSpec> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

export function setting<T>(flag: string, env: string, schema: z.ZodType<T>, description: string, defaultValue?: string | number): Setting<T> {
  return { flag, env, schema, description, ...(defaultValue === undefined ? {} : { default: String(defaultValue) }) };
}

export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n  ${problems.join('\n  ')}`);
    this.name = 'SettingsError';
  }
}

export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text);
    this.name = 'HelpRequested';
  }
}

export function readSettings<S extends SettingsSpec>(spec: S, argv: readonly string[], env: NodeJS.ProcessEnv, usage = ''): SettingsOf<S> {
  const options: Record<string, { type: 'string' }> = {};
  for (const item of Object.values(spec)) options[item.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new SettingsError([err instanceof Error ? err.message : String(err)]);
  }
  if (values.help) throw new HelpRequested(helpText(spec, usage));

  const problems: string[] = [];
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(spec)) {
    const fromFlag = values[item.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : (env[item.env] ?? item.default);
    const source = typeof fromFlag === 'string' ? `--${item.flag}` : env[item.env] !== undefined ? `${item.env}` : 'default';
    const parsed = item.schema.safeParse(raw);
    if (raw === undefined && !parsed.success) {
      problems.push(`--${item.flag} / ${item.env} is required: ${item.description}`);
    } else if (!parsed.success) {
      const reason = parsed.error.issues.map((issue) => issue.message).join('; ');
      problems.push(`--${item.flag} / ${item.env} (from ${source}) = ${JSON.stringify(raw)}: ${reason}`);
    } else {
      result[key] = parsed.data;
    }
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return result as SettingsOf<S>;
}

function helpText(spec: SettingsSpec, usage: string): string {
  const rows = Object.values(spec).map((item) => {
    const dflt = item.default === undefined ? '' : ` (default: ${item.default})`;
    return `  --${item.flag.padEnd(24)} ${item.env.padEnd(28)} ${item.description}${dflt}`;
  });
  return `${usage}\n\nOptions (flag, environment variable, meaning):\n${rows.join('\n')}\n`;
}

// Reusable schemas. Each takes the raw string a flag or variable gives.
export const port = z.coerce.number().int('must be a whole number').min(1).max(65535);
export const positiveInt = z.coerce.number().int('must be a whole number').min(1);
export const nonNegativeInt = z.coerce.number().int('must be a whole number').min(0);
export const nonEmpty = z.string().trim().min(1, 'must not be empty');
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
/** A base URL as the services keep and compare it: without trailing slashes ('http://a:1/' is 'http://a:1'). */
export function withoutTrailingSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}
export const httpUrl = z
  .string()
  .trim()
  .url('must be a URL')
  .refine((value) => /^https?:\/\//.test(value), 'must be an http(s) URL')
  .transform(withoutTrailingSlashes);
/** An http(s) URL, or empty for none. */
export const optionalHttpUrl = z.union([z.literal(''), httpUrl]);
/** host:port, comma-separated. */
export const memberList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each member must be host:port')).min(1, 'at least one member'));
