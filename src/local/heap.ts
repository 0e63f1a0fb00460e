import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The live heap of a local JVM in bytes, as the JVM counts it: `jcmd <pid> GC.class_histogram`
 * collects garbage first and totals every live object. Measured from the member itself, so the
 * store's cost per message is read, not estimated (the JDK's jcmd, beside its java).
 */
export async function liveHeapBytes(pid: number): Promise<number> {
  const { stdout } = await run('jcmd', [String(pid), 'GC.class_histogram'], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  const total = stdout.trim().split('\n').at(-1)?.trim().split(/\s+/);
  const bytes = Number(total?.[2]);
  if (total?.[0] !== 'Total' || !Number.isFinite(bytes)) throw new Error(`jcmd ${pid} GC.class_histogram gave no total`);
  return bytes;
}
