import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';

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
