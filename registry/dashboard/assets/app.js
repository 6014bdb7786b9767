// dubboreach dashboard: plain JavaScript, no framework, no inline script.
// Registry content is untrusted: it is only ever inserted as text (text nodes, textContent),
// never as HTML.
'use strict';

(function () {
  const main = document.getElementById('main');
  const status = document.getElementById('status');

  // h builds an element. Strings and numbers among the children become text nodes.
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  const clear = (e) => { e.replaceChildren(); return e; };

  class HTTPError extends Error {
    constructor(code, body) { super((body && body.error) || ('HTTP ' + code)); this.code = code; this.body = body; }
  }
  async function api(path, params) {
    const qs = params ? new URLSearchParams(params).toString() : '';
    const res = await fetch('/api/v1/' + path + (qs ? '?' + qs : ''), { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new HTTPError(res.status, body);
    return body;
  }

  // --- navigation: every view and filter lives in the URL ---
  function go(url, replace) {
    if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
    route();
  }
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest('a');
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const href = a.getAttribute('href');
    if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/') || a.target) return;
    ev.preventDefault();
    go(href);
    main.focus({ preventScroll: true });
  });
  window.addEventListener('popstate', route);

  const views = { '/': overview, '/providers': list('providers'), '/consumers': list('consumers'), '/registration': detail, '/routes': routesView };
  let loadSeq = 0; // the latest list request; older answers are dropped
  let refresh = null; // re-fetches the current view's data on a server update
  let viewKey = '';

  function route() {
    const path = location.pathname;
    const view = views[path] || notFound;
    for (const a of document.querySelectorAll('nav a[data-nav]')) {
      const cur = a.getAttribute('href') === path;
      if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    // A view keeps its form when only its parameters change (filters, paging, sorting).
    refresh = view(new URLSearchParams(location.search), path === viewKey);
    viewKey = path;
  }

  function notFound() {
    document.title = 'Not found · dubboreach';
    clear(main).append(h('h1', null, 'Not found'), h('p', null, h('a', { href: '/' }, 'Back to the overview')));
    return null;
  }

  function showError(where, err) {
    clear(where).append(h('p', { class: 'banner bad', role: 'alert' }, err.message || String(err)));
  }

  // --- helpers ---
  const fmtTime = (s) => s ? new Date(s).toLocaleString() : 'never';
  function age(s) {
    if (!s) return '';
    const sec = Math.max(0, Math.round((Date.now() - new Date(s).getTime()) / 1000));
    if (sec < 90) return sec + ' s ago';
    if (sec < 5400) return Math.round(sec / 60) + ' min ago';
    if (sec < 172800) return Math.round(sec / 3600) + ' h ago';
    return Math.round(sec / 86400) + ' days ago';
  }
  // Ages of measurements come from the auditor (ageSeconds, by its clock), not the browser's.
  function ago(sec) {
    sec = Math.max(0, Math.round(Number(sec) || 0));
    if (sec < 90) return sec + ' s ago';
    if (sec < 5400) return Math.round(sec / 60) + ' min ago';
    return Math.round(sec / 3600) + ' h ago';
  }
  // measuredLine is one vantage's measurement as text: "measured from NAME: result, N s ago".
  const measuredLine = (m) => 'measured from ' + m.vantage + ': ' + m.result + ', ' + ago(m.ageSeconds);
  // measuredList shows a row's measurements (worst first, as the API orders them); a
  // contradiction is marked and carries its hint.
  function measuredList(ms, more, withDetail) {
    if (!ms || !ms.length) return null;
    return h('ul', { class: 'measured' }, ms.map((m) => h('li', { class: m.contradicts ? 'contra' : null, 'data-vantage': m.vantage, 'data-result': m.result },
      m.contradicts ? h('strong', { class: 'tag bad' }, 'contradicted') : null, ' ', measuredLine(m),
      withDetail ? [m.protocol ? ' (' + m.protocol + (m.ms ? ', ' + m.ms.toFixed(1) + ' ms' : '') + ')' : '', m.detail ? h('span', { class: 'note' }, ' ' + m.detail) : null] : null,
      m.hint ? h('p', { class: 'hint' }, m.hint) : null)),
      more ? h('li', { class: 'note' }, '+' + more + ' more vantage(s) in the detail') : null);
  }
  const badge = (v) => h('span', { class: 'badge ' + (['reachable', 'unreachable', 'unknown'].includes(v) ? v : 'unknown') }, v);
  const detailHref = (znode) => '/registration?' + new URLSearchParams({ znode });
  const link = (path, params, ...kids) => h('a', { href: path + (params ? '?' + new URLSearchParams(params) : '') }, ...kids);

  let copySeq = 0;
  // copyBlock is a <pre> with a button copying its text.
  function copyBlock(label, text, note) {
    const id = 'copy-' + (++copySeq);
    const pre = h('pre', { id, tabindex: '0', 'aria-label': label }, text);
    const said = h('span', { class: 'note', role: 'status', 'aria-live': 'polite' });
    const btn = h('button', { type: 'button', class: 'act', 'aria-controls': id, onclick: async () => {
      let ok = false;
      try { await navigator.clipboard.writeText(pre.textContent); ok = true; } catch (e) {
        const r = document.createRange(); r.selectNodeContents(pre);
        const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
        try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      }
      said.textContent = ok ? 'Copied.' : 'Select the text and copy it (the browser refused).';
    } }, 'Copy');
    return h('div', { class: 'copy' }, h('div', { class: 'bar' }, h('strong', null, label), btn, said), note ? h('p', { class: 'note' }, note) : null, pre);
  }

  function table(caption, cols, rows, opts) {
    opts = opts || {};
    const head = h('tr', null, cols.map((c) => {
      const th = h('th', { scope: 'col' });
      if (opts.sort && c.sort) {
        const active = opts.sort.field === c.sort;
        if (active) th.setAttribute('aria-sort', opts.sort.dir === 'desc' ? 'descending' : 'ascending');
        th.append(h('button', { type: 'button', 'data-sort': c.sort, onclick: () => opts.sort.onSort(c.sort) }, c.label));
      } else th.append(c.label);
      return th;
    }));
    const body = h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: cols.length, class: 'empty' }, opts.empty || 'Nothing to show.')));
    return h('div', { class: 'scroll' }, h('table', null, h('caption', null, caption), h('thead', null, head), body));
  }

  // --- overview ---
  function overview() {
    document.title = 'Overview · dubboreach';
    clear(main).append(h('h1', null, 'Registry overview'));
    const body = h('div', { 'aria-busy': 'true' }, h('p', null, 'Loading…'));
    main.append(body);
    async function load() {
      let o;
      try { o = await api('overview', { changes: 20 }); } catch (e) { showError(body, e); return; }
      // Corrections of `audit --fix`; the section stays away when the auditor runs without it.
      let fx = null;
      try { fx = await api('fixes', { limit: 20 }); } catch (e) { fx = null; }
      const p = o.providers;
      const fresh = h('section', { 'aria-labelledby': 'h-fresh' }, h('h2', { id: 'h-fresh' }, 'Freshness'),
        o.complete ? h('p', { class: 'banner ok' }, 'The last scan read the whole registry.')
          : h('p', { class: 'banner bad', role: 'alert' }, 'The registry view is INCOMPLETE: ' + o.missing.length + ' path(s) could not be read; findings may be missing entries.'),
        h('dl', { class: 'facts' },
          h('dt', null, 'ZooKeeper'), h('dd', null, o.connected ? 'connected' : 'DISCONNECTED'),
          h('dt', null, 'Last complete scan'), h('dd', { 'data-field': 'lastCompleteScan' }, fmtTime(o.lastCompleteScan), ' ', h('span', { class: 'note' }, age(o.lastCompleteScan))),
          h('dt', null, 'Last full scan'), h('dd', null, fmtTime(o.lastFullScan), ' ', h('span', { class: 'note' }, age(o.lastFullScan))),
          h('dt', null, 'Judged'), h('dd', null, fmtTime(o.judgedAt)),
          h('dt', null, 'Pods'), h('dd', null, o.podsKnown ? 'known: addresses are mapped to pods' : 'not known: addresses are not mapped to pods')),
        o.missing.length ? table('Paths not read', [{ label: 'Path' }, { label: 'Kind' }, { label: 'Why' }],
          o.missing.map((m) => h('tr', null, h('td', null, m.path), h('td', null, m.kind || ''), h('td', null, m.reason || '')))) : null);
      const counts = h('section', { 'aria-labelledby': 'h-prov' }, h('h2', { id: 'h-prov' }, 'Providers'),
        h('ul', { class: 'cards' },
          ['unreachable', 'unknown', 'reachable'].map((v) => h('li', { class: v }, link('/providers', { verdict: v }, h('span', { class: 'n' }, p.byVerdict[v] || 0), v))),
          h('li', null, link('/providers', { flagged: 'true' }, h('span', { class: 'n' }, p.flagged), 'need attention')),
          o.measurements ? h('li', { class: o.measurements.contradicted ? 'unreachable' : null, 'data-field': 'contradicted' },
            link('/providers', { contradicted: 'true' }, h('span', { class: 'n' }, o.measurements.contradicted), 'contradicted by a measurement')) : null,
          h('li', null, link('/providers', null, h('span', { class: 'n' }, p.total), 'providers in all')),
          h('li', null, h('span', { class: 'n' }, o.unparseableTotal), 'unparseable')),
        h('h2', null, 'By reason'),
        table('Providers by verdict and reason', [{ label: 'Verdict' }, { label: 'Reason' }, { label: 'Providers' }],
          p.byReason.map((r) => h('tr', null, h('td', null, badge(r.verdict)), h('td', null, link('/providers', { verdict: r.verdict, reason: r.reason }, r.reason)), h('td', null, r.count)))),
        h('p', null, 'Consumers: ', link('/consumers', null, o.consumers.total + ' in all'), ', ', link('/consumers', { verdict: 'unreachable' }, (o.consumers.byVerdict.unreachable || 0) + ' unreachable'), '.'),
        o.routes ? h('p', null, 'Pod routes: ', o.routes.desired + ' desired on ' + o.routes.nodes + ' node(s), ' + o.routes.published + ' published, ',
          link('/routes', null, o.routes.missing + ' missing'), o.routes.problems ? ', ' + o.routes.problems + ' problem(s)' : '', '.') : null);
      const probes = o.measurements ? h('section', { 'aria-labelledby': 'h-probe' }, h('h2', { id: 'h-probe' }, 'Measurements'),
        h('p', null, o.measurements.measured + ' provider(s) measured by dubboreach probe, ', link('/providers', { contradicted: 'true' }, o.measurements.contradicted + ' contradicted'), '.'),
        table('Vantages that report measurements', [{ label: 'Vantage' }, { label: 'Last report' }, { label: 'Addresses' }, { label: 'Results' }],
          o.measurements.vantages.map((v) => h('tr', null, h('th', { scope: 'row' }, v.name), h('td', null, fmtTime(v.lastReport)), h('td', null, v.measurements),
            h('td', null, Object.entries(v.results || {}).filter(([, n]) => n).map(([r, n]) => r + ' ' + n).join(', ')))))) : null;
      const changes = h('section', { 'aria-labelledby': 'h-chg' }, h('h2', { id: 'h-chg' }, 'Recent changes'),
        table('Latest differences between successive scans, newest first (the last ' + o.changes.length + '; /api/v1/overview?changes=200 has more)',
          [{ label: 'When' }, { label: 'Change' }, { label: 'Service' }, { label: 'Address' }, { label: 'Verdict' }, { label: 'Reason' }],
          o.changes.map((c) => h('tr', null, h('td', null, fmtTime(c.at)), h('td', null, c.change + ' ' + c.side),
            h('td', null, c.change === 'removed' ? c.service : h('a', { href: detailHref(c.znode) }, c.service)), h('td', null, c.address),
            h('td', null, c.wasVerdict ? [badge(c.wasVerdict), ' → '] : null, badge(c.verdict)),
            h('td', null, c.wasReason && c.wasReason !== c.reason ? c.wasReason + ' → ' : '', c.reason))),
          { empty: 'No change since the dashboard started.' }));
      const bad = h('section', { 'aria-labelledby': 'h-bad' }, h('h2', { id: 'h-bad' }, 'Unparseable entries'),
        table('Znodes that are not registrations' + (o.unparseableTotal > o.unparseable.length ? ' (first ' + o.unparseable.length + ' of ' + o.unparseableTotal + ')' : ''),
          [{ label: 'Znode' }, { label: 'Error' }], o.unparseable.map((u) => h('tr', null, h('td', null, u.znode), h('td', null, u.error))), { empty: 'None.' }));
      const fixes = fx && fx.enabled ? h('section', { 'aria-labelledby': 'h-fix' }, h('h2', { id: 'h-fix' }, 'Corrections'),
        table('Latest corrections made by audit --fix, newest first (the last ' + fx.fixes.length + '; /api/v1/fixes?limit=500 has more)',
          [{ label: 'When' }, { label: 'Mode' }, { label: 'Result' }, { label: 'Subject' }, { label: 'Znode' }, { label: 'Why' }],
          fx.fixes.map((f) => h('tr', null, h('td', null, fmtTime(f.at)), h('td', null, f.mode + (f.op ? ' ' + f.op : '')),
            h('td', null, f.result), h('td', null, f.subject || f.provider || ''), h('td', null, f.path || ''),
            h('td', null, f.reason || '', f.error ? ' (' + f.error + ')' : ''))),
          { empty: 'No correction yet.' })) : null;
      clear(body).append(...[counts, probes, fresh, changes, fixes, bad].filter(Boolean));
      body.removeAttribute('aria-busy');
    }
    const run = () => load().catch((e) => showError(main, e));
    run();
    return run;
  }

  // --- providers and consumers ---
  const filterKeys = ['q', 'verdict', 'reason', 'service', 'application', 'namespace', 'node', 'flagged', 'contradicted'];
  const allKeys = filterKeys.concat(['sort', 'dir', 'page', 'limit']);

  function list(side) {
    const Side = side[0].toUpperCase() + side.slice(1);
    let form, results, lists;
    function build(params) {
      document.title = Side + ' · dubboreach';
      const field = (name, label, control, wide) => h('div', { class: 'field' + (wide ? ' wide' : '') }, h('label', { for: 'f-' + name }, label), control);
      const select = (name, first) => h('select', { id: 'f-' + name, name }, h('option', { value: '' }, first));
      lists = { service: h('datalist', { id: 'l-service' }), application: h('datalist', { id: 'l-application' }) };
      form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter ' + side },
        field('q', 'Search', h('input', { id: 'f-q', name: 'q', type: 'search', placeholder: 'service, address, pod, node…', autocomplete: 'off' }), true),
        field('verdict', 'Verdict', h('select', { id: 'f-verdict', name: 'verdict' }, h('option', { value: '' }, 'any'),
          ['unreachable', 'unknown', 'reachable'].map((v) => h('option', { value: v }, v)))),
        field('reason', 'Reason', select('reason', 'any')),
        field('service', 'Service', h('input', { id: 'f-service', name: 'service', type: 'text', list: 'l-service', autocomplete: 'off' })),
        field('application', 'Application', h('input', { id: 'f-application', name: 'application', type: 'text', list: 'l-application', autocomplete: 'off' })),
        field('namespace', 'Namespace', select('namespace', 'any')),
        field('node', 'Node', select('node', 'any')),
        field('limit', 'Per page', h('select', { id: 'f-limit', name: 'limit' }, [25, 50, 100, 200, 500].map((n) => h('option', { value: String(n) }, n)))),
        h('div', { class: 'check' }, h('input', { id: 'f-flagged', name: 'flagged', type: 'checkbox', value: 'true' }), h('label', { for: 'f-flagged' }, 'Only entries that need attention')),
        // Shown while probes report measurements (facets say so) or the URL asks for it.
        side === 'providers' ? h('div', { class: 'check', id: 'c-contradicted', hidden: params.get('contradicted') !== 'true' },
          h('input', { id: 'f-contradicted', name: 'contradicted', type: 'checkbox', value: 'true' }), h('label', { for: 'f-contradicted' }, 'Only verdicts contradicted by a measurement')) : null,
        h('button', { type: 'reset', class: 'act' }, 'Clear filters'),
        lists.service, lists.application);
      form.addEventListener('submit', (ev) => { ev.preventDefault(); apply(); });
      form.addEventListener('change', (ev) => { if (ev.target.name !== 'q') apply(); });
      form.addEventListener('reset', () => setTimeout(() => go(location.pathname), 0));
      let timer;
      form.elements.q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(apply, 350); });
      results = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' });
      clear(main).append(h('h1', null, Side), form, results);
      loadFacets();
    }
    // apply writes the form into the URL (page back to 1) and shows the result.
    function apply() {
      const cur = new URLSearchParams(location.search);
      const next = new URLSearchParams();
      for (const k of filterKeys.concat(['limit'])) {
        const el = form.elements[k];
        if (!el) continue;
        const v = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
        if (v && !(k === 'limit' && v === '50')) next.set(k, v);
      }
      for (const k of ['sort', 'dir']) if (cur.get(k)) next.set(k, cur.get(k));
      const url = location.pathname + (next.toString() ? '?' + next : '');
      if (url !== location.pathname + location.search) go(url);
    }
    function fill(params) {
      for (const k of filterKeys.concat(['limit'])) {
        const el = form.elements[k];
        if (!el) continue;
        const v = params.get(k) || (k === 'limit' ? '50' : '');
        if (el.type === 'checkbox') el.checked = v === 'true';
        else {
          if (el.tagName === 'SELECT' && v && ![...el.options].some((o) => o.value === v)) el.append(h('option', { value: v }, v));
          if (document.activeElement !== el || el.tagName === 'SELECT') el.value = v;
        }
      }
    }
    async function loadFacets() {
      let f;
      try { f = await api('facets', { side }); } catch (e) { return; }
      const params = new URLSearchParams(location.search);
      for (const k of ['reason', 'namespace', 'node']) {
        const el = form.elements[k];
        const keep = params.get(k) || '';
        const opts = [h('option', { value: '' }, 'any')];
        for (const c of f.values[k]) {
          if (c.value === '') continue;
          opts.push(h('option', { value: c.value }, c.value + ' (' + c.count + ')'));
        }
        el.replaceChildren(...opts);
        if (keep && ![...el.options].some((o) => o.value === keep)) el.append(h('option', { value: keep }, keep));
        el.value = keep;
      }
      const ck = document.getElementById('c-contradicted');
      if (ck && (f.contradicted !== undefined || params.get('contradicted') === 'true')) ck.hidden = false;
      for (const k of ['service', 'application']) lists[k].replaceChildren(...f.values[k].filter((c) => c.value).map((c) => h('option', { value: c.value })));
    }
    async function load() {
      const params = new URLSearchParams(location.search);
      const q = {};
      for (const k of allKeys) if (params.get(k)) q[k] = params.get(k);
      const seq = ++loadSeq;
      let pg;
      try { pg = await api(side, q); } catch (e) { if (seq === loadSeq) showError(results, e); return; }
      if (seq !== loadSeq) return; // a newer request (another filter) is on its way
      const sortField = pg.sort, dir = pg.dir;
      const onSort = (field) => {
        const p = new URLSearchParams(location.search);
        const d = (field === sortField && dir === 'asc') ? 'desc' : 'asc';
        p.set('sort', field); p.set('dir', d); p.delete('page');
        go(location.pathname + '?' + p);
      };
      const cols = [{ label: 'Service', sort: 'service' }, { label: 'Application', sort: 'application' }, { label: 'Protocol', sort: 'protocol' },
        { label: 'Address', sort: 'address' }, { label: 'Verdict', sort: 'verdict' }, { label: 'Reason', sort: 'reason' },
        { label: 'Namespace/pod', sort: 'pod' }, { label: 'Node', sort: 'node' }];
      const rows = pg.items.map((r) => h('tr', { 'data-verdict': r.verdict, 'data-contradicted': r.contradicted ? 'true' : null, class: r.contradicted ? 'contradicted' : null },
        h('td', null, h('a', { href: detailHref(r.znode) }, r.service), r.kind === 'application' ? h('span', { class: 'tag' }, 'app-level') : null),
        h('td', null, r.application || ''), h('td', null, r.protocol || ''), h('td', { class: 'nowrap' }, r.hostPort),
        h('td', null, badge(r.verdict), r.stale ? h('span', { class: 'tag' }, 'stale') : null, r.noListener ? h('span', { class: 'tag' }, 'no listener') : null,
          measuredList(r.measured, r.measuredMore, false)),
        h('td', { class: 'nowrap' }, r.reason), h('td', null, r.pod || ''), h('td', null, r.node || '')));
      const first = pg.total ? (pg.page - 1) * pg.limit + 1 : 0;
      const last = Math.min(pg.total, pg.page * pg.limit);
      const caption = pg.total ? side + ' ' + first + '–' + last + ' of ' + pg.total + ' matching, sorted by ' + sortField + ' (' + (dir === 'desc' ? 'descending' : 'ascending') + ')'
        : 'No ' + side + ' match these filters.';
      const pageHref = (n) => { const p = new URLSearchParams(location.search); if (n > 1) p.set('page', n); else p.delete('page'); return location.pathname + (p.toString() ? '?' + p : ''); };
      const pl = (label, n, rel) => {
        const off = n < 1 || n > pg.pages || n === pg.page;
        return h('a', { class: 'act', href: pageHref(Math.max(1, Math.min(n, pg.pages || 1))), rel, 'aria-disabled': off ? 'true' : null, tabindex: off ? '-1' : null }, label);
      };
      const nav = h('nav', { class: 'pages', 'aria-label': 'Pages' },
        pl('« First', 1), pl('‹ Previous', pg.page - 1, 'prev'),
        h('span', { 'data-page': pg.page }, 'Page ' + pg.page + ' of ' + Math.max(pg.pages, 1)),
        pl('Next ›', pg.page + 1, 'next'), pl('Last »', pg.pages));
      clear(results).append(table(caption, cols, rows, { sort: { field: sortField, dir, onSort }, empty: 'No ' + side + ' match these filters.' }), nav);
      results.removeAttribute('aria-busy');
      performance.mark('dubboreach:rows');
    }
    return function (params, same) {
      if (!same || !form) build(params);
      fill(params);
      const run = () => load().catch((e) => showError(results, e));
      run();
      return () => { loadFacets(); run(); };
    };
  }

  // --- detail ---
  function detail(params) {
    document.title = 'Registration · dubboreach';
    const znode = params.get('znode') || '';
    clear(main).append(h('p', null, h('a', { href: '/providers' }, '← Providers')));
    const body = h('div', { 'aria-live': 'polite' }, h('p', null, 'Loading…'));
    main.append(body);
    async function load() {
      const q = { znode };
      if (params.get('format')) q.format = params.get('format');
      let d;
      try { d = await api('registration', q); } catch (e) {
        showError(body, e);
        if (e.code === 404) body.append(h('p', null, 'Znode: ', h('code', null, znode)));
        return;
      }
      document.title = d.service + ' · dubboreach';
      const facts = h('dl', { class: 'facts' },
        h('dt', null, 'Verdict'), h('dd', null, badge(d.verdict), ' ', d.reason),
        h('dt', null, 'Side'), h('dd', null, d.side + ', ' + d.kind + ' level'),
        h('dt', null, 'Address'), h('dd', null, d.hostPort),
        h('dt', null, 'Protocol'), h('dd', null, d.protocol || '—'),
        h('dt', null, 'Application'), h('dd', null, d.application || '—'),
        h('dt', null, 'Pod'), h('dd', null, d.pod || 'not known'),
        h('dt', null, 'Node'), h('dd', null, d.node || 'not known'),
        h('dt', null, 'Znode path'), h('dd', null, h('code', null, d.dir)),
        h('dt', null, 'Znode name'), h('dd', null, h('code', null, d.name)),
        d.stale ? [h('dt', null, 'Stale'), h('dd', null, 'no pod holds this address any more')] : null,
        d.noListener ? [h('dt', null, 'No listener'), h('dd', null, 'no pod publishes this host port')] : null,
        d.persistent ? [h('dt', null, 'Persistent'), h('dd', null, 'dynamic=false: the znode outlives its provider')] : null,
        d.measured ? [h('dt', null, 'Measured'), h('dd', { 'data-field': 'measured' }, measuredList(d.measured, 0, true))] : null);
      const fix = h('section', { 'aria-labelledby': 'h-fix' }, h('h2', { id: 'h-fix' }, 'What to do'),
        d.contradicted ? h('div', { class: 'banner bad', role: 'alert', 'data-field': 'contradicted' }, h('strong', null, 'A measurement contradicts this verdict.'),
          h('ul', null, d.measured.filter((m) => m.contradicts).map((m) => h('li', null, m.hint)))) : null,
        d.explanation ? h('p', { class: 'explain' + (d.flagged ? '' : ' ok') }, d.explanation) : h('p', { class: 'explain ok' }, 'Nothing: the network outside the cluster reaches this address.'));
      const f = d.fix;
      if (f.route) {
        const sel = h('select', { id: 'f-format' }, f.route.formats.map((x) => h('option', { value: x }, x)));
        sel.value = f.route.format;
        sel.addEventListener('change', () => { const p = new URLSearchParams(location.search); p.set('format', sel.value); go(location.pathname + '?' + p, true); });
        fix.append(h('h3', null, 'Publish the missing pod route'),
          h('p', null, 'Node ', f.route.route.node, ' needs ', f.route.route.prefix, ' via ', f.route.route.nextHop || '(no next hop)', ' on the fabric.'),
          h('div', { class: 'field' }, h('label', { for: 'f-format' }, 'Router'), ' ', sel),
          copyBlock('Route for ' + f.route.format, f.route.config, 'Every missing route: ' + f.route.all));
      }
      if (f.namespaceLabel) {
        fix.append(h('h3', null, 'Turn injection on for the namespace'),
          copyBlock('Label the namespace', f.namespaceLabel.command, f.namespaceLabel.note || (f.namespaceLabel.done === false ? 'The namespace is not labelled yet.' : null)));
      }
      if (f.restart) fix.append(h('h3', null, 'Restart the pod'), copyBlock('Restart the pod', f.restart.command, f.restart.note));
      if (f.deleteZnode) fix.append(h('h3', null, 'Delete the stale entry'), copyBlock('Delete the znode', f.deleteZnode.command, f.deleteZnode.note));
      const parsed = h('section', { 'aria-labelledby': 'h-parsed' }, h('h2', { id: 'h-parsed' }, d.url ? 'Parsed URL' : 'Instance'));
      if (d.url) {
        parsed.append(h('pre', { tabindex: '0', 'aria-label': 'Decoded URL' }, d.url.decoded),
          table('URL parameters', [{ label: 'Key' }, { label: 'Value' }], d.url.params.map((p) => h('tr', null, h('th', { scope: 'row' }, p.key), h('td', null, p.value)))));
      } else if (d.instance) {
        const inst = Object.assign({}, d.instance); delete inst.raw;
        parsed.append(h('pre', { tabindex: '0', 'aria-label': 'Instance' }, JSON.stringify(inst, null, 2)));
        if (d.instance.raw) parsed.append(h('h3', null, 'Raw data'), h('pre', { tabindex: '0', 'aria-label': 'Raw instance data' }, d.instance.raw));
      }
      if (d.parseError) parsed.append(h('p', { class: 'banner bad' }, d.parseError));
      clear(body).append(h('h1', null, d.service), facts, fix, parsed);
    }
    const run = () => load().catch((e) => showError(main, e));
    run();
    return run;
  }

  // --- routes ---
  function routesView(params) {
    document.title = 'Routes · dubboreach';
    clear(main).append(h('h1', null, 'Pod routes'));
    const body = h('div', null, h('p', null, 'Loading…'));
    main.append(body);
    async function load() {
      let v;
      try { v = await api('routes'); } catch (e) { showError(body, e); return; }
      const format = new URLSearchParams(location.search).get('format') || 'linux';
      const sel = h('select', { id: 'f-format' }, v.formats.map((x) => h('option', { value: x }, x)));
      sel.value = v.formats.includes(format) ? format : 'linux';
      sel.addEventListener('change', () => go('/routes?format=' + encodeURIComponent(sel.value), true));
      const fm = sel.value;
      const missing = v.nodes.reduce((n, x) => n + x.missing, 0);
      const nodes = table('Pod routes per node', [{ label: 'Node' }, { label: 'Desired' }, { label: 'Published' }, { label: 'Missing' }],
        v.nodes.map((n) => h('tr', { 'data-missing': n.missing }, h('th', { scope: 'row' }, n.name), h('td', null, n.desired), h('td', null, n.published), h('td', null, n.missing ? h('strong', null, n.missing) : '0'))));
      const all = table('Every desired pod route', [{ label: 'Prefix' }, { label: 'Next hop' }, { label: 'Node' }, { label: 'Source' }, { label: 'State' }],
        v.nodes.flatMap((n) => n.routes.map((r) => h('tr', null, h('td', null, r.prefix), h('td', null, r.nextHop || '—'), h('td', null, r.node), h('td', null, r.source || ''),
          h('td', null, r.published ? badge('reachable') : badge('unreachable'), ' ', r.published ? 'published' : 'missing')))));
      const out = [h('div', { class: 'field' }, h('label', { for: 'f-format' }, 'Router configuration format'), ' ', sel),
        missing ? copyBlock('Missing routes (' + missing + '), ' + fm, v.missing[fm], 'Add these on the gateway or the routers of the fabric.')
          : h('p', { class: 'banner ok' }, 'Every pod route is published.'),
        h('h2', null, 'Nodes'), nodes, h('h2', null, 'Routes'), all,
        h('details', null, h('summary', null, 'Every desired route as ' + fm), copyBlock('All routes, ' + fm, v.all[fm] || '')) ];
      if (v.stale.length) out.push(h('h2', null, 'Stale routes'), h('p', null, 'Installed on the gateway, needed by no node: ', v.stale.join(', ')), copyBlock('Remove stale routes, ' + fm, v.removeStale[fm] || ''));
      if (v.problems.length) out.push(h('h2', null, 'Problems'), h('ul', null, v.problems.map((p) => h('li', null, (p.node ? 'node ' + p.node + ': ' : p.object ? p.object + ': ' : '') + p.message))));
      clear(body).append(...out);
    }
    const run = () => load().catch((e) => showError(main, e));
    run();
    return run;
  }

  // --- live updates: server-sent events; the view re-fetches with the URL's filters ---
  let lastGen = 0;
  let lastMeasured = 0;
  let es = null;
  // A page left for another (or kept in the back/forward cache) closes its stream: browsers
  // allow a handful of connections per server, and a stream held by a hidden page takes one.
  window.addEventListener('pagehide', () => { if (es) { es.close(); es = null; } });
  window.addEventListener('pageshow', (ev) => { if (ev.persisted && !es) { live(); if (refresh) refresh(); } });
  function live() {
    es = new EventSource('/api/v1/events');
    es.addEventListener('update', (ev) => {
      const u = JSON.parse(ev.data);
      status.classList.toggle('down', !u.connected || !u.complete);
      status.textContent = 'Updated ' + new Date(u.judgedAt).toLocaleTimeString() + (u.connected ? '' : ' · ZooKeeper DISCONNECTED') + (u.complete ? '' : ' · scan incomplete');
      document.body.dataset.generation = String(u.generation);
      const mv = u.measured || 0;
      if (lastGen && (u.generation !== lastGen || mv !== lastMeasured) && refresh) refresh();
      lastGen = u.generation;
      lastMeasured = mv;
    });
    es.addEventListener('error', () => { status.classList.add('down'); status.textContent = 'Live updates interrupted; reconnecting…'; });
  }

  route();
  live();
})();
