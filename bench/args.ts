import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../src/lib/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
/** What parseArgs gives for these options, strictly parsed. */
export type BenchValues<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'];

/** Thrown by the checks below: the bench names the option and the reason, then exits with 2. */
class BadOption extends Error {}

/**
 * A benchmark's flags (only the given ones and --help): the usage (the file's doc comment, say) on
 * --help; the reason on stderr and exit code 2 for an unknown flag or a value `check` refuses,
 * before anything is started.
 */
export function benchArgs<const O extends Options, T>(name: string, usage: string, options: O, check: (values: BenchValues<O>) => T): T {
  try {
    const args = process.argv.slice(2);
    if (args.includes('--help')) {
      console.log(usage);
      process.exit(0);
    }
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    return check(values as BenchValues<O>);
  } catch (err) {
    console.error(`${name}: ${err instanceof BadOption ? err.message : errorMessage(err)}\n(npm run ${name} -- --help lists the options)`);
    process.exit(2);
  }
}

/** A number above zero (whole if `whole`), from an option's text; undefined stays undefined. */
export function positive(option: string, text: string | undefined, whole = true): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (whole && !Number.isInteger(value))) {
    throw new BadOption(`--${option} must be a ${whole ? 'whole ' : ''}number above 0, not "${text}"`);
  }
  return value;
}

/** Comma-separated words, each one of `known`. */
export function oneOf(option: string, text: string, known: readonly string[]): Set<string> {
  const words = text.split(',').filter(Boolean);
  const unknown = words.filter((word) => !known.includes(word));
  if (words.length === 0 || unknown.length > 0) throw new BadOption(`--${option} takes a comma-separated list of ${known.join(', ')}`);
  return new Set(words);
}
