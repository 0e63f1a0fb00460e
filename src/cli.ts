#!/usr/bin/env node
import { HelpRequested, SettingsError } from './lib/settings.js';

/** Each command is loaded only when asked for, so a service process holds only its own code. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main: (argv: string[]) => Promise<void> }> }> = {
  'config-server': { summary: 'serve the instance registry (port 8888)', load: () => import('./config-server/main.js') },
  logging: { summary: 'logging-service: store messages in the Hazelcast map (8081/8083/8085)', load: () => import('./logging-service/main.js') },
  messages: { summary: 'messages-service: consume the Hazelcast queue (8082/8084)', load: () => import('./messages-service/main.js') },
  facade: { summary: 'facade-service: the public API (8080)', load: () => import('./facade-service/main.js') },
  hazelcast: { summary: 'one local Hazelcast member (5701-5703)', load: () => import('./local/hazelcast-member.js') },
  up: { summary: 'the whole system on the lab ports, in the foreground', load: () => import('./local/up.js') },
  lab: { summary: 'lab Part 1 against a running system', load: () => import('./lab/part1.js') },
  drill: { summary: 'lab Part 2: kill the member owning the queue, prove nothing is lost', load: () => import('./lab/drill.js') },
  fill: { summary: 'post until the store refuses; every acknowledged message still stored, every member alive', load: () => import('./lab/fill.js') },
  chaos: {
    summary: 'steady load while every kind of process is killed in turn; every acknowledged message accounted for',
    load: () => import('./lab/chaos.js'),
  },
  partition: {
    summary: 'steady load while the network splits and a member freezes (needs root); every acknowledged message accounted for',
    load: () => import('./lab/partition.js'),
  },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(14)} ${command.summary}`);
  return `usage: mqlab <command> [options]   (mqlab <command> --help for its options)\n\n${rows.join('\n')}`;
}

async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    process.exitCode = name ? 0 : 2;
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command: ${name}\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  try {
    await (await command.load()).main(rest);
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.text);
      return;
    }
    if (err instanceof SettingsError) {
      console.error(`mqlab ${name}: ${err.message}\n(mqlab ${name} --help lists the options)`);
      process.exit(2);
    }
    console.error(`mqlab ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  }
}

await run(process.argv.slice(2));
