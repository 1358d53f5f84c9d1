// The Trellis dashboard: one page showing a lattice (or one embedded host) as the read-only
// API of crates/dashboard serves it, kept current by polling the snapshot and following
// the event stream. Read-only by design: nothing on this page changes the lattice.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, componentRates, followEvents, snapshot, takeToken } from './api.js';
import './style.css';

/** How often the snapshot is fetched when no event asks for it sooner. */
const POLL_MS = 2000;
/** Events kept on the page, newest first. */
const MAX_EVENTS = 200;
/** Events that change what the snapshot shows come in bursts: one refetch per burst. */
const EVENT_REFRESH_MS = 150;

function App() {
  const [token] = useState(takeToken);
  const [state, setState] = useState({ snapshot: null, rates: new Map(), error: null });
  const [events, setEvents] = useState([]);
  const [streaming, setStreaming] = useState(false);
  const previousStats = useRef(new Map());
  const refreshSoon = useRef(() => {});

  // The snapshot: now, every POLL_MS, and shortly after events.
  useEffect(() => {
    let stopped = false;
    let timer = null;
    let inFlight = false;
    let again = false;
    async function refresh() {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      clearTimeout(timer);
      try {
        const snap = await snapshot(token);
        const rates = new Map();
        for (const host of snap.hosts) {
          if (!host.stats) continue;
          const before = previousStats.current.get(host.id);
          for (const [id, r] of componentRates(before, host.stats)) rates.set(`${host.id}/${id}`, r);
          // Keep the older answer until time has passed, so two quick fetches (an event
          // right after a poll) do not give a rate over a few milliseconds.
          if (!before || host.stats.at_ms - before.at_ms >= 1000) {
            previousStats.current.set(host.id, host.stats);
          }
        }
        if (!stopped) setState({ snapshot: snap, rates, error: null });
      } catch (e) {
        if (!stopped) setState((s) => ({ ...s, error: e }));
      } finally {
        inFlight = false;
        if (!stopped) timer = setTimeout(refresh, again ? 0 : POLL_MS);
        again = false;
      }
    }
    let pending = null;
    refreshSoon.current = () => {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        refresh();
      }, EVENT_REFRESH_MS);
    };
    refresh();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(pending);
    };
  }, [token]);

  // The event stream, reopened a few seconds after it ends or fails.
  useEffect(() => {
    const abort = new AbortController();
    let retry = null;
    async function follow() {
      try {
        setStreaming(true);
        await followEvents(
          token,
          (event) => {
            setEvents((list) => [event, ...list].slice(0, MAX_EVENTS));
            refreshSoon.current();
          },
          abort.signal,
        );
      } catch {
        // Said by the snapshot's error banner; the stream just tries again.
      }
      setStreaming(false);
      if (!abort.signal.aborted) retry = setTimeout(follow, 3000);
    }
    follow();
    return () => {
      abort.abort();
      clearTimeout(retry);
    };
  }, [token]);

  const snap = state.snapshot;
  return (
    <>
      <header>
        <h1>Trellis</h1>
        <span class="lattice">{snap ? `lattice ${snap.lattice}` : 'connecting…'}</span>
        <span class={`live ${streaming ? 'on' : 'off'}`} data-testid="live">
          {streaming ? 'live' : 'events paused'}
        </span>
        {snap && <span class="updated">updated {new Date(snap.at_ms).toLocaleTimeString()}</span>}
      </header>
      <main>
        {state.error && <ErrorBanner error={state.error} />}
        {snap && (snap.problems ?? []).map((p) => <p class="warning">{p}</p>)}
        {snap && <Snapshot snap={snap} rates={state.rates} />}
        <Events events={events} />
      </main>
    </>
  );
}

function ErrorBanner({ error }) {
  const message = error instanceof ApiError ? error.message : String(error);
  return (
    <p class="error" role="alert" data-testid="error">
      {message}
    </p>
  );
}

function Snapshot({ snap, rates }) {
  const components = snap.hosts.flatMap((h) => h.components.map((c) => ({ host: h, c })));
  const providers = snap.hosts.flatMap((h) => h.providers.map((p) => ({ host: h, p })));
  return (
    <>
      <Section title="Hosts" count={snap.hosts.length}>
        <table>
          <thead>
            <tr><th>name</th><th>id</th><th>labels</th><th>uptime</th><th>version</th></tr>
          </thead>
          <tbody>
            {snap.hosts.map((h) => (
              <tr data-host={h.id} key={h.id}>
                <td>{h.friendly_name}</td>
                <td class="id">{short(h.id)}</td>
                <td><Labels labels={h.labels} /></td>
                <td>{h.uptime_human || `${h.uptime_seconds}s`}</td>
                <td>{h.version}</td>
                {h.error && <td class="reason">{h.error}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Components" count={components.length}>
        <table>
          <thead>
            <tr>
              <th>component</th><th>image</th><th>host</th>
              <th title="instances running now / the most that may run at once">instances</th>
              <th>requests/s</th><th>errors</th>
            </tr>
          </thead>
          <tbody>
            {components.map(({ host, c }) => {
              const r = rates.get(`${host.id}/${c.id}`);
              return (
                <tr data-component={c.id} key={`${host.id}/${c.id}`}>
                  <td>{c.name && c.name !== c.id ? <>{c.name} <span class="id">{c.id}</span></> : c.id}</td>
                  <td class="image">{c.image_ref}</td>
                  <td>{host.friendly_name}</td>
                  <td data-testid="instances">
                    {r ? r.inUse : '–'} / <span data-testid="max-instances">{c.max_instances}</span>
                  </td>
                  <td data-testid="rate">{r?.rate == null ? '–' : r.rate.toFixed(1)}</td>
                  <td data-testid="errors" class={r?.errors ? 'bad' : ''}>
                    {r ? `${r.errors}${r.errorRate ? ` (${r.errorRate.toFixed(1)}/s)` : ''}` : '–'}
                  </td>
                </tr>
              );
            })}
            {snap.hosts.flatMap((h) =>
              (h.pending_components ?? []).map((p) => (
                <tr data-component={p.id} class="pending" key={`${h.id}/pending/${p.id}`}>
                  <td>{p.id}</td>
                  <td class="image">{p.image_ref}</td>
                  <td>{h.friendly_name}</td>
                  <td>– / {p.max_instances}</td>
                  <td colspan="2">{p.state}{p.reason ? `: ${p.reason}` : ''}</td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      </Section>
      <Section title="Providers" count={providers.length}>
        <table>
          <thead>
            <tr><th>provider</th><th>image</th><th>host</th><th>health</th><th>reason</th></tr>
          </thead>
          <tbody>
            {providers.map(({ host, p }) => {
              const state = p.status?.state ?? 'running';
              return (
                <tr data-provider={p.id} key={`${host.id}/${p.id}`}>
                  <td>{p.name && p.name !== p.id ? <>{p.name} <span class="id">{p.id}</span></> : p.id}</td>
                  <td class="image">{p.image_ref}</td>
                  <td>{host.friendly_name}</td>
                  <td><span class={`status ${state}`} data-testid="provider-status">{state}</span></td>
                  <td class="reason" data-testid="provider-reason">{p.status?.reason ?? ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      <Section title="Links" count={snap.links.length}>
        <table>
          <thead>
            <tr><th>source</th><th>target</th><th>interfaces</th><th>name</th></tr>
          </thead>
          <tbody>
            {snap.links.map((l) => (
              <tr key={`${l.source_id}/${l.wit_namespace}:${l.wit_package}/${l.name}`}>
                <td>{l.source_id}</td>
                <td>{l.target}</td>
                <td>{`${l.wit_namespace}:${l.wit_package}/{${l.interfaces.join(', ')}}`}</td>
                <td>{l.name}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Apps" count={snap.apps.length}>
        <table>
          <thead>
            <tr><th>app</th><th>deployed</th><th>latest</th><th>status</th><th>reason</th></tr>
          </thead>
          <tbody>
            {snap.apps.map((a) => (
              <tr data-app={a.name} key={a.name}>
                <td>{a.name}</td>
                <td>{a.deployed_version ?? '–'}</td>
                <td>{a.version}</td>
                <td><span class={`status ${a.status}`}>{a.status}</span></td>
                <td class="reason">{a.status_message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}

function Events({ events }) {
  return (
    <Section title="Events" count={events.length}>
      <ol class="events" data-testid="events">
        {events.map((e) => (
          <li key={e.id}>
            <time>{e.time}</time> <b>{e.type.replace('com.wasmcloud.lattice.', '')}</b>{' '}
            <span class="id">{short(e.source)}</span> <code>{JSON.stringify(e.data)}</code>
          </li>
        ))}
        {events.length === 0 && <li class="empty">no events since this page opened</li>}
      </ol>
    </Section>
  );
}

function Section({ title, count, children }) {
  return (
    <section id={title.toLowerCase()}>
      <h2>
        {title} <span class="count">{count}</span>
      </h2>
      {children}
    </section>
  );
}

function Labels({ labels }) {
  return Object.entries(labels ?? {}).map(([k, v]) => (
    <span class="label" key={k}>
      {k}={v}
    </span>
  ));
}

/** Host ids are 56-character nkeys: the start is enough to tell them apart on a page. */
function short(id) {
  return id && id.length > 20 ? `${id.slice(0, 12)}…` : id;
}

render(<App />, document.getElementById('app'));
