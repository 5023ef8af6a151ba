// adshare's live dashboard: sign in over REST, load the figures from the
// reports, then follow the realtime channel (GET /ws): metrics.live adds
// to the figures, system.alert lists alerts, reload loads them again.
// Tokens stay in memory (a reload of the page signs out); the access token
// goes to the socket in the first message, never in the URL.
'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  access: '', refresh: '', expiresAt: 0, user: null,
  figures: { impressions: 0, valid: 0, clicks: 0, earnings: 0, final: null },
  ws: null, attempt: 0, positions: {}, renewTimer: 0, queueTimer: 0, stopped: true,
};

// api calls the REST API with the access token; a 401 refreshes the
// session once and tries again.
async function api(method, path, body, retried) {
  const headers = { Accept: 'application/json' };
  if (state.access) headers.Authorization = 'Bearer ' + state.access;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401 && state.refresh && !retried && path !== '/auth/refresh') {
    await refreshTokens();
    return api(method, path, body, true);
  }
  const text = await resp.text();
  const data = text ? JSON.parse(text) : {};
  if (!resp.ok) {
    const err = new Error(data.detail || data.title || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function keepTokens(t) {
  state.access = t.access_token;
  state.refresh = t.refresh_token;
  state.expiresAt = Date.now() + t.expires_in * 1000;
}

async function refreshTokens() {
  const t = await api('POST', '/auth/refresh', { refresh_token: state.refresh });
  keepTokens(t);
}

// Money is integer micros of the currency unit; shown with four decimals
// without going through floating point.
function money(micros) {
  if (micros === null || micros === undefined) return '–';
  const neg = micros < 0;
  const m = Math.abs(Math.trunc(micros));
  const units = Math.trunc(m / 1e6);
  const frac = String(m % 1e6).padStart(6, '0').slice(0, 4);
  return (neg ? '-' : '') + units.toLocaleString('en') + '.' + frac;
}

function setFigure(id, text) {
  const el = $(id);
  if (el.textContent === text) return;
  el.textContent = text;
  el.classList.add('bumped');
  setTimeout(() => el.classList.remove('bumped'), 800);
}

function render() {
  const f = state.figures;
  setFigure('impressions', f.impressions.toLocaleString('en'));
  setFigure('valid-impressions', f.valid.toLocaleString('en'));
  setFigure('clicks', f.clicks.toLocaleString('en'));
  setFigure('earnings', money(f.earnings));
  setFigure('final-earnings', money(f.final));
}

// loadFigures reads the last seven days from the performance and revenue
// reports; live messages add to these.
async function loadFigures() {
  const [perf, rev] = await Promise.all([api('GET', '/analytics/performance'), api('GET', '/analytics/revenue')]);
  const t = perf.totals;
  state.figures = {
    impressions: t.impressions, valid: t.valid_impressions, clicks: t.clicks,
    earnings: t.estimated_owner_earnings_micros, final: rev.final ? rev.final.owner_micros : 0,
  };
  render();
}

function setStatus(cls, text) {
  const el = $('live-status');
  el.className = 'status ' + cls;
  el.textContent = text;
}

function addAlert(kind, message, time) {
  $('no-alerts').hidden = true;
  const li = document.createElement('li');
  const k = document.createElement('span');
  k.className = 'kind';
  k.textContent = kind;
  const when = document.createElement('span');
  when.className = 'time';
  when.textContent = new Date(time || Date.now()).toLocaleTimeString('en-GB');
  li.append(k, document.createTextNode(message), when);
  $('alerts').prepend(li);
}

function canModerate() {
  return state.user && (state.user.permissions || []).includes('content:moderate');
}

async function loadQueue() {
  if (!canModerate()) return;
  const data = await api('GET', '/moderation/queue?limit=50');
  const rows = data.contents.map((c) => {
    const tr = document.createElement('tr');
    const cells = [
      c.submitted_at ? new Date(c.submitted_at).toLocaleString('en-GB') : '',
      c.title, c.format, c.bid ? c.bid.model + ' ' + money(c.bid.micros) : '', c.advertiser_id.slice(0, 8),
    ];
    for (const v of cells) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    tr.className = 'queue-item';
    return tr;
  });
  $('queue').replaceChildren(...rows);
  $('queue-empty').hidden = rows.length > 0;
}

function topics() {
  const id = state.user.id;
  return ['space:' + id, 'user:' + id, 'alerts'];
}

function send(type, payload) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ v: 1, type, payload }));
  }
}

// connect opens the realtime channel and authenticates in the first
// message; after a drop it reconnects with full-jitter backoff and
// resumes each topic from its last position.
function connect() {
  if (state.stopped) return;
  setStatus('connecting', 'connecting…');
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  state.ws = ws;
  ws.onopen = () => send('auth', { token: state.access });
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  ws.onclose = async (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.stopped) return;
    const code = ev.code;
    if ((code >= 4500 && code < 5000) || code === 1008 || code === 1009) {
      signOut('signed out by the server (' + code + ')');
      return;
    }
    setStatus('connecting', 'reconnecting…');
    if (code === 4001 || code === 4006) {
      try { await refreshTokens(); } catch (e) { signOut('session ended'); return; }
    }
    const cap = Math.min(20000, 500 * 2 ** state.attempt++);
    setTimeout(connect, Math.max(500, Math.floor(Math.random() * (cap + 1))));
  };
}

function handle(m) {
  switch (m.type) {
    case 'welcome': {
      state.attempt = 0;
      setStatus('live', 'live');
      scheduleRenewal(Date.parse(m.payload.expires_at));
      send('subscribe', { topics: topics().map((t) => (state.positions[t] ? { topic: t, since: state.positions[t] } : { topic: t })) });
      break;
    }
    case 'subscribed':
      state.positions[m.payload.topic] = m.payload.position;
      break;
    case 'metrics.live': {
      const p = m.payload;
      const f = state.figures;
      f.impressions += p.impressions;
      f.valid += p.valid_impressions;
      f.clicks += p.clicks;
      f.earnings += p.earnings_micros;
      render();
      $('last-update').textContent = 'Last live update ' + new Date(m.time).toLocaleTimeString('en-GB') + '.';
      break;
    }
    case 'system.alert':
      addAlert(m.payload.kind, m.payload.message, m.time);
      break;
    case 'ad.updated':
      if (canModerate()) loadQueue().catch(() => {});
      break;
    case 'reload':
      if (m.payload.topic.startsWith('space:')) loadFigures().catch(() => {});
      break;
    case 'error':
      console.warn('realtime:', m.payload.code, m.payload.message);
      break;
  }
  if (m.seq && m.topic) state.positions[m.topic] = { seq: m.seq, epoch: m.epoch };
}

// scheduleRenewal refreshes the access token a little before it expires
// and authenticates the open socket again with the new one.
function scheduleRenewal(expiresAt) {
  clearTimeout(state.renewTimer);
  const wait = Math.max(1000, expiresAt - Date.now() - 30000);
  state.renewTimer = setTimeout(async () => {
    try {
      await refreshTokens();
      send('auth', { token: state.access });
    } catch (e) {
      signOut('session ended');
    }
  }, wait);
}

async function signIn(email, password) {
  const t = await api('POST', '/auth/login', { email, password });
  keepTokens(t);
  state.user = await api('GET', '/users/me');
  state.stopped = false;
  $('who').textContent = state.user.email + ' · ' + state.user.role;
  $('signin-panel').hidden = true;
  $('signout').hidden = false;
  $('space-panel').hidden = false;
  $('alerts-panel').hidden = false;
  $('queue-panel').hidden = !canModerate();
  await loadFigures();
  if (canModerate()) {
    await loadQueue();
    state.queueTimer = setInterval(() => loadQueue().catch(() => {}), 15000);
  }
  connect();
}

function signOut(reason) {
  state.stopped = true;
  clearTimeout(state.renewTimer);
  clearInterval(state.queueTimer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close(1000, 'signed out');
  }
  if (state.access) fetch('/auth/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + state.access } }).catch(() => {});
  Object.assign(state, { access: '', refresh: '', user: null, positions: {} });
  for (const id of ['space-panel', 'alerts-panel', 'queue-panel', 'signout']) $(id).hidden = true;
  $('signin-panel').hidden = false;
  $('who').textContent = '';
  $('alerts').replaceChildren();
  $('no-alerts').hidden = false;
  setStatus('off', reason || 'signed out');
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    try {
      await signIn($('email').value, $('password').value);
    } catch (e) {
      $('signin-error').textContent = e.message;
    }
  });
  $('signout').addEventListener('click', () => signOut());
  $('queue-reload').addEventListener('click', () => loadQueue().catch(() => {}));
});
