import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import { ROOT } from '../local/paths.js';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** A lab command's flags: only the given ones (and --help, -h), no positional arguments. */
export function labFlags<O extends Options>(argv: string[], options: O) {
  return parseArgs({ args: argv, strict: true, allowPositionals: false, options: { ...HELP, ...options } }).values;
}

/** A whole-number option between min and max, refused with a reason that names it. */
export const int = (min: number, max: number, what: string) =>
  z.coerce
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

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

/** What a lab command that runs on a topology of its own starts with (see labRun). */
export interface LabRun<T> {
  args: T;
  /** Prints a line on stdout, as the run goes. */
  progress: (line: string) => void;
  /** The command line as the report quotes it: `npm run <command> -- <argv>`. */
  command: string;
  /** This run's own directory, .cache/<command>/<date>-<pid> (not created here). */
  workDir: string;
  /** Where its processes' logs go, in workDir. */
  logDir: string;
}

/**
 * The opening of a lab command that starts a topology of its own (chaos, partition): its options
 * read (readOptions), and the names the run and its report use. undefined once the usage or the
 * reason the options were refused has been printed.
 */
export function labRun<T>(command: string, usage: string, parse: (argv: string[]) => T | 'help', argv: string[]): LabRun<T> | undefined {
  const args = readOptions(command, usage, parse, argv);
  if (!args) return undefined;
  const workDir = join(ROOT, '.cache', command, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
  return {
    args,
    progress: (line) => process.stdout.write(`${line}\n`),
    command: `npm run ${command}${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    workDir,
    logDir: join(workDir, 'logs'),
  };
}

export interface RecordedRun<R extends { ok: boolean }> {
  /** The command's name in messages ("chaos run could not be completed"). */
  what: string;
  progress: (line: string) => void;
  /** Starts what the run needs; stop() undoes it (also on SIGINT/SIGTERM, then exit 130). */
  start: () => Promise<void>;
  run: () => Promise<R>;
  stop: () => Promise<void>;
  markdown: (result: R) => string;
  summary: (result: R) => Record<string, unknown>;
  /** Where the report is appended. */
  record: (markdown: string) => void;
  recordedIn: string;
}

/**
 * A lab command's run on a system of its own: start, run, append the report, print one JSON
 * object as the last line, stop, exit (the Hazelcast client and the children are gone; stray
 * timers are not waited for). Exit code 0 when the run is ok, 1 otherwise or when it failed.
 */
export async function runAndRecord<R extends { ok: boolean }>(options: RecordedRun<R>): Promise<void> {
  const { progress } = options;
  const stopOnSignal = () => {
    void options.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  let summary: Record<string, unknown>;
  try {
    await options.start();
    const result = await options.run();
    const markdown = options.markdown(result);
    progress(`\n${markdown}`);
    options.record(markdown);
    progress(`report appended to ${options.recordedIn}`);
    summary = options.summary(result);
    process.exitCode = result.ok ? 0 : 1;
  } catch (err) {
    progress(`${options.what} could not be completed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    summary = { error: errorMessage(err), ok: false };
    process.exitCode = 1;
  } finally {
    await options.stop();
  }
  console.log(JSON.stringify(summary));
  process.exit(process.exitCode ?? 0);
}
