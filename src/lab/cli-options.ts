import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';

/** A whole-number option between min and max, refused with a reason that names it. */
export const int = (min: number, max: number, what: string) =>
  z.coerce.number({ error: `${what} must be a number` }).int(`${what} must be a whole number`).min(min, `${what} must be at least ${min}`).max(max, `${what} must be at most ${max}`);

/** Appends a run's report to its file under bench/, the file's header first when it is new. */
export function appendReport(file: string, header: string, markdown: string): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${existsSync(file) ? '' : header}${markdown}\n`);
}

/**
 * Reads a lab command's options: the parsed options, or undefined once it has printed the usage
 * (--help) or the reason the options were refused (exit code 2).
 */
export function readOptions<T>(command: string, usage: string, parse: (argv: string[]) => T | 'help', argv: string[]): T | undefined {
  let parsed: T | 'help';
  try {
    parsed = parse(argv);
  } catch (err) {
    const message = err instanceof z.ZodError ? err.issues.map((issue) => issue.message).join('; ') : errorMessage(err);
    console.error(`mqlab ${command}: ${message}\n(mqlab ${command} --help lists the options)`);
    process.exitCode = 2;
    return undefined;
  }
  if (parsed === 'help') {
    console.log(usage);
    return undefined;
  }
  return parsed;
}
