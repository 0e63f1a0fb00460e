import got from 'got';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { facadeAnswer, instancesAnswer, loggingListing, messagesListing, postAnswer } from '../lib/contract.js';
import { defaultPort } from '../lib/topology.js';

const USAGE = `usage: mqlab lab [--messages N] [--gets N] [--facade URL] [--config-server URL]

Lab Part 1 against a running system (npm start): posts msg1..msgN through the facade as the seed's
client did (a form field), then shows which logging-service stored each message, what each
messages-service received, and what GET /facade answers.`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      messages: { type: 'string', default: '10' },
      gets: { type: 'string', default: '3' },
      facade: { type: 'string', default: `http://127.0.0.1:${defaultPort('facade-service')}` },
      'config-server': { type: 'string', default: `http://127.0.0.1:${defaultPort('config-server')}` },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const count = z.coerce.number().int().min(1).max(100_000).parse(values.messages);
  const gets = z.coerce.number().int().min(0).max(100).parse(values.gets);
  const http = got.extend({ timeout: { request: 10_000 }, retry: { limit: 0 } });

  console.log(`\n1. POST msg1..msg${count} to ${values.facade}/facade (form field "msg", as the seed's client)`);
  const posted: Array<{ msg: string; uuid: string; 'logging instance': string }> = [];
  for (let i = 1; i <= count; i += 1) {
    const answer = postAnswer.parse(await http.post(`${values.facade}/facade`, { form: { msg: `msg${i}` } }).json());
    posted.push({ msg: answer.msg, uuid: answer.uuid, 'logging instance': answer.logging.instance });
  }
  console.table(posted);

  const instances = async (service: string) => instancesAnswer.parse(await http.get(`${values['config-server']}/services/${service}`).json());

  console.log('\n2. Each logging-service instance (the map is shared, so each returns all of them)');
  const loggingRows = [];
  for (const base of await instances('logging-service')) {
    const answer = loggingListing.parse(await http.get(`${base}/logging`).json());
    loggingRows.push({
      instance: answer.instance,
      count: answer.count,
      'stored here (by this instance)': posted
        .filter((p) => p['logging instance'] === answer.instance)
        .map((p) => p.msg)
        .join(' '),
    });
  }
  console.table(loggingRows);

  console.log('\n3. Each messages-service instance (the queue splits the messages between them)');
  const wanted = new Set(posted.map((p) => p.uuid));
  const messagesBases = await instances('messages-service');
  let messagesRows: Array<{ instance: string; count: number; received: string }>;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const answers = await Promise.all(messagesBases.map(async (base) => messagesListing.parse(await http.get(`${base}/messages`).json())));
    const seen = answers.flatMap((answer) => answer.messages.filter((m) => wanted.has(m.uuid)));
    messagesRows = answers.map((answer) => ({
      instance: answer.instance,
      count: answer.messages.filter((m) => wanted.has(m.uuid)).length,
      received: answer.messages
        .filter((m) => wanted.has(m.uuid))
        .map((m) => m.msg)
        .join(' '),
    }));
    if (seen.length >= wanted.size || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  console.table(messagesRows);
  const total = messagesRows.reduce((sum, row) => sum + row.count, 0);
  console.log(`   together: ${total} of ${count} posted in this run`);

  console.log(`\n4. GET ${values.facade}/facade, ${gets} times (logging set + one random messages-service's set)`);
  const getRows = [];
  for (let i = 1; i <= gets; i += 1) {
    const answer = facadeAnswer.parse(await http.get(`${values.facade}/facade`).json());
    getRows.push({
      call: i,
      'logging instance': answer.logging.instance,
      'logged count': answer.logging.count,
      'messages instance': answer.messages.instance ?? `(${answer.messages.error ?? 'none'})`,
      'its messages': answer.messages.messages.map((m) => m.msg).join(' '),
    });
  }
  console.table(getRows);
}
