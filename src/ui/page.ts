/**
 * The live page: plain HTML, CSS and JavaScript served by the process (no build step, no framework). One tile per
 * source with its annotated video (JPEGs polled one after another into an <img>), its state and numbers (polled from /api/sources every
 * second), and a list of recent events (Server-Sent Events from /api/events/stream) with their snapshots and clips.
 * Everything shown from events is set as text, never as HTML.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>visionpipe</title>
<style>
  :root { color-scheme: dark; --bg: #111418; --panel: #1b2027; --text: #e6e9ee; --dim: #97a0ad; --live: #2fbf71; --warn: #e0a526; --bad: #e5484d; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: .6rem 1rem; border-bottom: 1px solid #2a313b; }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .summary { color: var(--dim); }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 320px; gap: 1rem; padding: 1rem; }
  #tiles { display: grid; gap: .8rem; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); align-content: start; }
  #tiles.n1 { grid-template-columns: minmax(0, 1fr); }
  #tiles.n2, #tiles.n4 { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  #tiles.n3, #tiles.n5, #tiles.n6, #tiles.n7, #tiles.n8, #tiles.n9 { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .tile { background: var(--panel); border-radius: 8px; overflow: hidden; display: flex; flex-direction: column; }
  .tile .head { display: flex; justify-content: space-between; gap: .5rem; padding: .4rem .6rem; align-items: center; }
  .tile .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .badge { font-size: .75rem; padding: .1rem .5rem; border-radius: 999px; background: #333; white-space: nowrap; }
  .badge.live { background: var(--live); color: #04140b; }
  .badge.stalled, .badge.backoff, .badge.connecting { background: var(--warn); color: #1d1402; }
  .badge.failed { background: var(--bad); }
  .video { position: relative; background: #000; aspect-ratio: 4 / 3; }
  /* Rows of tiles fit the window (a laptop screen): the picture letterboxes inside its box. */
  #tiles.n1 .video { max-height: calc(100vh - 10rem); }
  #tiles.n2 .video, #tiles.n3 .video, #tiles.n4 .video, #tiles.n5 .video, #tiles.n6 .video { max-height: calc(50vh - 7rem); }
  #tiles.n7 .video, #tiles.n8 .video, #tiles.n9 .video { max-height: calc(33vh - 7rem); }
  #tiles.n7 .stats, #tiles.n8 .stats, #tiles.n9 .stats { font-size: .72rem; gap: .1rem .6rem; padding: .25rem .5rem; }
  .reason:empty { display: none; }
  @media (max-width: 700px) { #tiles[class] { grid-template-columns: minmax(0, 1fr); } #tiles[class] .video { max-height: none; } }
  .video img { width: 100%; height: 100%; object-fit: contain; display: block; }
  .video img:not([src]) { visibility: hidden; } /* before its first frame */
  .tile:not([data-state="live"]) .video img { opacity: .45; } /* the last picture, not a live one */
  .stats { display: flex; flex-wrap: wrap; gap: .2rem .9rem; padding: .4rem .6rem; color: var(--dim); font-size: .8rem; font-variant-numeric: tabular-nums; }
  .stats b { color: var(--text); font-weight: 500; }
  .reason { padding: 0 .6rem .4rem; color: var(--warn); font-size: .8rem; min-height: 1.1rem; }
  aside { background: var(--panel); border-radius: 8px; padding: .6rem; max-height: calc(100vh - 5rem); overflow: auto; }
  aside h2 { font-size: .95rem; margin: 0 0 .5rem; }
  #events { list-style: none; margin: 0; padding: 0; }
  #events li { display: flex; gap: .5rem; padding: .35rem 0; border-top: 1px solid #2a313b; font-size: .8rem; overflow-wrap: anywhere; }
  #events li img { width: 56px; height: 56px; object-fit: cover; border-radius: 4px; background: #000; flex: none; }
  #events .what { font-weight: 600; }
  #events .when, #events .detail { color: var(--dim); }
  #events a { color: #7cb7ff; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } aside { max-height: none; } }
</style>
</head>
<body>
<header><h1>visionpipe</h1><span class="summary" id="summary">connecting…</span></header>
<main>
  <section id="tiles" aria-label="sources"></section>
  <aside><h2>Recent events</h2><ul id="events"></ul></aside>
</main>
<script>
(() => {
  const tiles = new Map();
  const tilesEl = document.getElementById('tiles');
  const summaryEl = document.getElementById('summary');
  const eventsEl = document.getElementById('events');
  const rowsById = new Map();
  const MAX_ROWS = 100;
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

  function tileFor(s) {
    let t = tiles.get(s.name);
    if (t) return t;
    const root = el('article', 'tile');
    root.dataset.source = s.name;
    const head = el('div', 'head');
    const name = el('span', 'name', s.id);
    name.title = s.id;
    const badge = el('span', 'badge', s.state);
    head.append(name, badge);
    const video = el('div', 'video');
    const img = el('img');
    img.alt = 'live video of ' + s.id;
    video.append(img);
    pump(s.name, img);
    const stats = el('div', 'stats');
    const reason = el('div', 'reason');
    root.append(head, video, stats, reason);
    tilesEl.append(root);
    t = { root, badge, stats, reason };
    tiles.set(s.name, t);
    return t;
  }

  // Each tile asks for the next frame when it has shown the last one: a slow browser asks less often, and requests
  // that end (unlike an MJPEG stream each) leave connections for nine tiles within the browser's six per server.
  async function pump(name, img) {
    let after = -1;
    let shown = null;
    for (;;) {
      while (document.hidden) await new Promise((resolve) => setTimeout(resolve, 500)); // a hidden tab asks for nothing
      try {
        const r = await fetch('/api/sources/' + encodeURIComponent(name) + '/latest.jpg?waitMs=1000&after=' + after, { cache: 'no-store' });
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const index = Number(r.headers.get('x-frame-index'));
        const url = URL.createObjectURL(await r.blob());
        await new Promise((resolve) => { img.onload = img.onerror = resolve; img.src = url; });
        if (shown) URL.revokeObjectURL(shown);
        shown = url;
        if (index === after) await new Promise((resolve) => setTimeout(resolve, 1000)); // nothing newer: the source is not live
        after = index;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  function stat(label, value) { const span = el('span', '', label + ' '); span.append(el('b', '', value)); return span; }

  async function refresh() {
    try {
      const r = await fetch('/api/sources', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const { sources } = await r.json();
      tilesEl.className = 'n' + Math.min(sources.length, 9);
      let live = 0;
      for (const s of sources) {
        const t = tileFor(s);
        if (s.state === 'live') live++;
        t.badge.textContent = s.state + (s.attempt > 0 && s.state !== 'live' ? ' #' + s.attempt : '');
        t.badge.className = 'badge ' + s.state;
        t.root.dataset.state = s.state;
        const drops = Object.entries(s.drops).filter(([, n]) => n > 0).map(([k, n]) => k + ' ' + n).join(', ') || 'none';
        t.stats.replaceChildren(
          stat('fps', s.fps.toFixed(1)),
          stat('latency', s.latencyMs === null ? '–' : s.latencyMs + ' ms'),
          stat('frame', s.lastFrameIndex === null ? '–' : String(s.lastFrameIndex)),
          stat('drops', drops),
        );
        t.stats.dataset.frame = String(s.lastFrameIndex ?? '');
        t.reason.textContent = s.state === 'live' ? '' : (s.reason || '') + (s.retryInMs ? ' · retry in ' + Math.round(s.retryInMs / 1000) + ' s' : '');
      }
      summaryEl.textContent = sources.length + ' source' + (sources.length === 1 ? '' : 's') + ', ' + live + ' live';
    } catch (err) {
      summaryEl.textContent = 'visionpipe is not answering (' + err.message + ')';
      // The run may be over: no tile claims to be live any more.
      for (const t of tiles.values()) { t.badge.textContent = 'unknown'; t.badge.className = 'badge'; t.root.dataset.state = 'unknown'; }
    }
  }

  function describe(e) {
    const bits = [];
    if (e.label) bits.push(e.label + (e.trackId !== undefined ? ' #' + e.trackId : ''));
    if (e.zone) bits.push(e.zone);
    if (e.line) bits.push(e.line + (e.direction ? ' ' + e.direction : ''));
    if (e.type === 'source-state') bits.push(e.state + (e.reason ? ': ' + e.reason : ''));
    return bits.join(' · ');
  }

  function addClipLink(row, eventId) {
    if (!row || row.querySelector('a.clip')) return;
    const a = el('a', 'clip', 'clip');
    a.href = '/api/events/' + encodeURIComponent(eventId) + '/clip.mp4';
    a.target = '_blank';
    row.querySelector('.text').append(' ', a);
  }

  function onEvent(e) {
    if (e.type === 'object.update') return; // too many to list
    if (e.type === 'clip.ready') { addClipLink(rowsById.get(e.forEventId), e.id); return; }
    const li = el('li');
    li.dataset.type = e.type;
    if (typeof e.snapshot === 'string' && e.id) {
      const img = el('img');
      img.loading = 'lazy';
      img.alt = 'snapshot';
      img.src = '/api/events/' + encodeURIComponent(e.id) + '/snapshot.jpg';
      li.append(img);
    }
    const text = el('div', 'text');
    const when = new Date(e.atMs || Date.now()).toLocaleTimeString();
    text.append(el('div', 'what', e.type), el('div', 'detail', (e.source || '') + ' ' + describe(e)), el('div', 'when', when));
    li.append(text);
    eventsEl.prepend(li);
    if (e.id) rowsById.set(e.id, li);
    while (eventsEl.children.length > MAX_ROWS) {
      const last = eventsEl.lastElementChild;
      for (const [id, row] of rowsById) if (row === last) rowsById.delete(id);
      last.remove();
    }
  }

  // The event stream holds one of the six connections a browser opens to a server: a hidden tab lets go of it (so
  // several open tabs do not starve each other) and picks up what it missed when shown again.
  let stream = null;
  let lastSeq = 0;
  function openStream() {
    if (stream) return;
    stream = new EventSource('/api/events/stream?since=' + lastSeq);
    stream.addEventListener('vp', (m) => { lastSeq = Number(m.lastEventId) || lastSeq; onEvent(JSON.parse(m.data)); });
  }
  function closeStream() { if (stream) { stream.close(); stream = null; } }
  document.addEventListener('visibilitychange', () => (document.hidden ? closeStream() : openStream()));
  if (!document.hidden) openStream();
  refresh();
  setInterval(refresh, 1000);
})();
</script>
</body>
</html>
`;
