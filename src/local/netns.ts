import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A small network of Linux network namespaces for the partition run (`npm run partition`): each
 * member in a namespace of its own, joined to a bridge on the host by a veth pair, the host holding
 * the bridge's first address so the services (on the host) reach every member over it. Cuts are
 * made the way a broken link or switch makes them, silently: a blackhole route inside a member's
 * namespace for each peer it must not reach (one direction per namespace, so a cut is set on both
 * sides), or the member's veth taken down (cut off from everything, the host included). Needs
 * root and the `ip` command (iproute2); nothing else on the host is touched, and close() removes it all.
 */
export class MemberNetwork {
  private closed = false;

  private constructor(
    /** A short tag unique to this run: namespace and link names carry it. */
    readonly tag: string,
    /** The member namespaces' addresses, in order. */
    readonly hosts: readonly string[],
    readonly hostAddress: string,
    private readonly subnet: string,
  ) {}

  /** Namespace name of member i. */
  namespace(i: number): string {
    return `mqlab-${this.tag}-m${i}`;
  }

  /** The host side of member i's veth pair (at most 15 characters, as Linux wants). */
  private hostLink(i: number): string {
    return `mq${this.tag}h${i}`;
  }

  private get bridge(): string {
    return `mq${this.tag}br`;
  }

  /** The command prefix that runs a program inside member i's namespace (`ip netns exec` execs it: the pid is the program's). */
  prefix(i: number): string[] {
    return ['ip', 'netns', 'exec', this.namespace(i)];
  }

  /** Whether this machine can build one: root and a working `ip netns`. */
  static async available(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return 'needs root (network namespaces and veth pairs)';
    try {
      await run('ip', ['netns', 'list']);
      return undefined;
    } catch (err) {
      return `\`ip netns\` does not work here: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /**
   * Builds the bridge and one namespace per member. `octet` picks the 10.<octet>.<n>.0/24 subnet
   * (from the pid by default), so two runs side by side do not share addresses.
   */
  static async create(members: number, tag = (process.pid % 10_000).toString(36), octet = 200 + (process.pid % 50)): Promise<MemberNetwork> {
    const third = process.pid % 250;
    const prefix = `10.${octet}.${third}`;
    const net = new MemberNetwork(
      tag,
      Array.from({ length: members }, (_, i) => `${prefix}.${11 + i}`),
      `${prefix}.1`,
      `${prefix}.0/24`,
    );
    try {
      await net.build();
    } catch (err) {
      await net.close();
      throw err;
    }
    return net;
  }

  private async build(): Promise<void> {
    const { bridge } = this;
    await ip('link', 'add', bridge, 'type', 'bridge');
    await ip('addr', 'add', `${this.hostAddress}/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (const [i, address] of this.hosts.entries()) {
      const ns = this.namespace(i);
      await ip('netns', 'add', ns);
      await ip('link', 'add', this.hostLink(i), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('link', 'set', this.hostLink(i), 'master', bridge);
      await ip('link', 'set', this.hostLink(i), 'up');
      await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  }

  /** Member i and member j no longer reach each other (both still reach the host and the rest). */
  async cut(i: number, j: number): Promise<void> {
    await ip('-n', this.namespace(i), 'route', 'add', 'blackhole', `${this.hosts[j]}/32`);
    await ip('-n', this.namespace(j), 'route', 'add', 'blackhole', `${this.hosts[i]}/32`);
  }

  /** Undoes cut(i, j). */
  async mend(i: number, j: number): Promise<void> {
    await ip('-n', this.namespace(i), 'route', 'del', 'blackhole', `${this.hosts[j]}/32`).catch(() => undefined);
    await ip('-n', this.namespace(j), 'route', 'del', 'blackhole', `${this.hosts[i]}/32`).catch(() => undefined);
  }

  /** Member i reaches nothing and nothing reaches it: its link is down. */
  async isolate(i: number): Promise<void> {
    await ip('link', 'set', this.hostLink(i), 'down');
  }

  /** Undoes isolate(i). */
  async reconnect(i: number): Promise<void> {
    await ip('link', 'set', this.hostLink(i), 'up');
  }

  /** Removes the namespaces (their veth pairs go with them) and the bridge; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const i of this.hosts.keys()) await ip('netns', 'del', this.namespace(i)).catch(() => undefined);
    await ip('link', 'del', this.bridge).catch(() => undefined);
  }

  describe(): string {
    return `members at ${this.hosts.join(', ')} (namespaces ${this.hosts.map((_, i) => this.namespace(i)).join(', ')}), the host at ${this.hostAddress} on bridge ${this.bridge}, ${this.subnet}`;
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed${stderr ? `: ${stderr}` : ''}`, { cause: err });
  }
}
