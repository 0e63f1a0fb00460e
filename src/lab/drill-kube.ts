import type { DrillEnvironment } from './drill-core.js';
import type { ParsedArgs } from './drill.js';

export const KUBE_DEFAULTS = { namespace: 'default', release: 'mqlab' } as const;

export async function kubeEnvironment(_args: ParsedArgs, _progress: (line: string) => void): Promise<DrillEnvironment> {
  throw new Error('not yet');
}
