// The live page: one event stream from the facade (/dashboard/events), rendered with DOM calls.
// Every text from the system (message texts are user input) goes in through textContent, never as markup.
import uPlot from '/dashboard/vendor/uPlot.esm.js';

const $ = (id) => document.getElementById(id);

/** An element with classes, attributes and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function setText(id, text) {
  $(id).textContent = text;
}

function showError(id, text) {
  const node = $(id);
  node.hidden = !text;
  node.textContent = text ?? '';
}

const statusPill = (status) =>
  el('span', { class: `pill ${status === 'ready' ? 'pill-ready' : status === 'shutting down' ? 'pill-wait' : 'pill-unready'}`, text: status });
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
const number = (n) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));

// --- chart: queue depth and POST rate over the last samples ----------------------------------
const HISTORY = 300;
const series = { t: [], depth: [], rate: [] };
let chart;

function chartSize() {
  const width = Math.max($('chart').clientWidth, 300);
  return { width, height: 220 };
}

function makeChart() {
  chart = new uPlot(
    {
      ...chartSize(),
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: {
        x: { time: true },
        depth: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] },
        rate: { range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] },
      },
      axes: [
        { stroke: '#6b7385', grid: { stroke: '#eef0f4' } },
        { scale: 'depth', stroke: '#2f6fdf', grid: { stroke: '#eef0f4' }, size: 50 },
        { scale: 'rate', side: 1, stroke: '#d9822b', grid: { show: false }, size: 50 },
      ],
      series: [
        {},
        { label: 'queue depth', scale: 'depth', stroke: '#2f6fdf', width: 2, fill: 'rgba(47,111,223,0.08)', spanGaps: false, points: { show: false } },
        { label: 'POST/s (this facade)', scale: 'rate', stroke: '#d9822b', width: 2, points: { show: false } },
      ],
    },
    [series.t, series.depth, series.rate],
    $('chart'),
  );
  new ResizeObserver(() => chart.setSize(chartSize())).observe($('chart'));
}

function addSamples(samples) {
  for (const s of samples) {
    if (series.t.length && s.t / 1000 <= series.t[series.t.length - 1]) continue;
    series.t.push(s.t / 1000);
    series.depth.push(s.depth);
    series.rate.push(s.postRate);
  }
  for (const list of Object.values(series)) list.splice(0, Math.max(0, list.length - HISTORY));
  chart.setData([series.t, series.depth, series.rate]);
}

// --- rendering -------------------------------------------------------------------------------
const seen = new Set();

const megabytes = (bytes) => (bytes / (1024 * 1024)).toFixed(1);

function renderCluster(cluster) {
  const members = $('members');
  if (!cluster.connected) {
    showError('cluster-error', `not connected: ${cluster.error}`);
    setText('queue-depth', '–');
    setText('queue-owner', '–');
    setText('queue-partition', '');
    members.replaceChildren();
    return;
  }
  showError('cluster-error', null);
  setText('queue-depth', number(cluster.size));
  setText('queue-name', `queue "${cluster.queue}"`);
  setText('queue-owner', cluster.owner?.address ?? 'none');
  setText('queue-partition', `partition ${cluster.partitionId}`);
  members.replaceChildren(
    ...cluster.members.map((member) => {
      const owner = member.uuid === cluster.owner?.uuid;
      return el(
        'li',
        { 'data-member': member.address },
        el('span', { class: 'mono', text: member.address }),
        owner ? el('span', { class: 'pill pill-owner', text: 'owns the queue' }) : '',
        el('span', { class: 'dim small', text: member.uuid }),
      );
    }),
  );
}

const hostOf = (address) => address.replace(/^https?:\/\//, '');

function renderServices(state) {
  showError('config-error', state.configServer.ok ? null : `config-server did not answer (showing its last list): ${state.configServer.error}`);
  const group = (name) => el('tr', { class: 'group' }, el('th', { colspan: 3, text: name }));
  const rows = [
    group('facade-service'),
    el(
      'tr',
      { 'data-instance': state.facade.instance },
      el('td', { text: `${state.facade.instance} (this page)` }),
      el('td', { class: 'mono', text: location.host }),
      el('td', {}, statusPill(state.facade.status)),
    ),
  ];
  for (const service of state.services) {
    rows.push(group(service.name));
    for (const view of service.instances) {
      rows.push(
        el(
          'tr',
          { 'data-url': view.url, 'data-status': view.status },
          el('td', { text: view.instance ?? '–' }),
          el('td', { class: 'mono', text: hostOf(view.url) }),
          el('td', {}, statusPill(view.status)),
        ),
      );
    }
  }
  $('services').replaceChildren(...rows);
}

function renderMessages(state) {
  showError('store-error', state.store.error ? `logging store: ${state.store.error}` : null);
  setText('store-count', number(state.store.count));
  setText('store-note', state.store.instance ? `positions, as ${state.store.instance} counts them` : '');
  const capacity = state.capacity;
  setText('store-used', capacity ? `${Math.round((100 * capacity.usedBytes) / capacity.capacityBytes)} %` : '–');
  setText(
    'store-capacity',
    capacity ? `${megabytes(capacity.usedBytes)} of ${megabytes(capacity.capacityBytes)} MB${capacity.full ? ' · full: writes refused (507)' : ''}` : '',
  );
  $('store-used').classList.toggle('full', Boolean(capacity?.full));
  const rows = state.messages.map((m) => {
    const fresh = !seen.has(m.uuid);
    seen.add(m.uuid);
    return el(
      'tr',
      { 'data-uuid': m.uuid, class: fresh && seen.size > state.messages.length ? 'fresh' : undefined },
      el('td', { class: 'msg', text: m.msg }),
      el('td', { class: 'mono dim', title: m.uuid, text: m.uuid.slice(0, 8) }),
      el('td', { class: 'logged-by', text: m.loggedBy ?? '–' }),
      el('td', { class: 'received-by' }, m.receivedBy ? m.receivedBy : el('span', { class: 'pill pill-wait', text: 'waiting' })),
    );
  });
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 4, class: 'dim', text: 'no messages yet' })));
  $('messages').replaceChildren(...rows);
  setText(
    'sources',
    state.sources.length
      ? `messages-services asked: ${state.sources.map((s) => `${s.instance ?? s.url} (${s.error ? 'no answer' : `${number(s.count)} received`})`).join(', ')}`
      : '',
  );
}

function renderEvents(events) {
  const items = events.map((e) => el('li', {}, el('time', { text: clock(e.t) }), e.text));
  if (items.length === 0) items.push(el('li', { class: 'dim', text: 'nothing has changed since this facade started' }));
  $('events').replaceChildren(...items);
}

function render(state) {
  setText('facade-instance', state.facade.instance);
  setText('updated', `updated ${clock(Date.parse(state.generatedAt))}`);
  renderCluster(state.cluster);
  renderServices(state);
  renderMessages(state);
  renderEvents(state.events);
  if (state.history) addSamples(state.history);
  else if (state.sample) addSamples([state.sample]);
  const rate = series.rate[series.rate.length - 1];
  setText('post-rate', rate === undefined ? '–' : String(rate));
}

function setLink(text, kind) {
  const link = $('link');
  link.textContent = text;
  link.className = `pill pill-${kind}`;
}

// --- live updates ----------------------------------------------------------------------------
function connect() {
  const source = new EventSource('/dashboard/events');
  source.addEventListener('state', (event) => {
    setLink('live', 'live');
    render(JSON.parse(event.data));
  });
  source.addEventListener('error', () => setLink(source.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting', 'down'));
}

// --- the form: POST /facade as JSON, and say what the facade answered ------------------------
$('post-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('post-msg');
  const result = $('post-result');
  const send = $('post-send');
  send.disabled = true;
  result.className = 'result';
  result.textContent = 'sending…';
  try {
    const response = await fetch('/facade', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ msg: input.value }) });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      result.textContent = `${body.status === 'duplicate' ? 'already stored' : 'stored'} by ${body.logging?.instance ?? '?'} and queued · ${body.uuid}`;
      input.value = '';
    } else {
      result.className = 'result bad';
      result.textContent = `${response.status}: ${body.error ?? response.statusText}`;
    }
  } catch (err) {
    result.className = 'result bad';
    result.textContent = `the facade did not answer: ${err.message}`;
  } finally {
    send.disabled = false;
  }
});

makeChart();
connect();
