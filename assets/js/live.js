// HossAgent's own page script. The CSP allows scripts from this site only, so
// everything a page does beyond htmx is here, wired to htmx's events (no
// inline script, no eval). It does three things:
//
//  1. Live updates keep the reader's place. The stream morphs its regions
//     (hx-swap="outerMorph"), which keeps every node that did not change;
//     this script keeps <details> the reader opened or closed as they were,
//     and after any swap that replaced the nodes it gives back the focus
//     (and caret), the scroll of inner scroll areas and the text selection.
//  2. A session that ended says so. The stream's last message is then the
//     named event session-ended, a reconnect is answered 401, and so is any
//     htmx request: the page shows #session-ended with a sign-in link back
//     to the same page, stops its stream, and swaps no 401 into a panel.
//  3. The stream's state is shown in #live-status (Live, Reconnecting…,
//     Paused, Session ended; role=status, so it is announced politely), and
//     #live-toggle pauses live updates (the stream is closed, nothing is
//     applied) and resumes them (a new stream, whose first message is the
//     whole picture).
(() => {
  "use strict";

  const LABELS = {
    connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
    paused: "Paused", ended: "Session ended",
  };
  // How long after a stream that could not open (a refused or failed first
  // request, which htmx's SSE extension does not retry) a new one is opened.
  const RESTART_AFTER = 1000;

  let paused = false;
  let ended = false;
  let connection = null; // the SSE extension's connection of #live
  let liveAttrs = null; // #live's own attributes, to open a new stream
  let liveParent = null;
  let restartTimer = 0;

  const byId = (id) => document.getElementById(id);
  const isLive = (el) => !!el && el.id === "live" && el.isConnected;

  function show(state) {
    const status = byId("live-status");
    if (status && status.dataset.state !== state) {
      status.dataset.state = state;
      status.textContent = LABELS[state];
    }
    document.documentElement.dataset.live = state;
    const toggle = byId("live-toggle");
    if (toggle) {
      toggle.textContent = paused ? "Resume live updates" : "Pause live updates";
      toggle.setAttribute("aria-pressed", String(paused));
      toggle.hidden = ended;
    }
  }

  // ---- the stream: stop, start, restart ----

  // remember keeps #live's attributes as they are now: an in-place pager
  // replaces #live (hx-select-oob) with the stream of the page it shows,
  // and a restart or a resume must open that stream, not the first one.
  function remember(el) {
    liveAttrs = [...el.attributes].filter((a) => !a.name.startsWith("data-htmx")).map((a) => [a.name, a.value]);
    liveParent = el.parentNode;
  }

  // stop closes the stream for good: #live leaves the page (the extension
  // stops at its next step) and its request is cancelled now.
  function stop() {
    clearTimeout(restartTimer);
    restartTimer = 0;
    const el = byId("live");
    const c = connection;
    connection = null;
    if (el) {
      remember(el);
      el.remove();
    }
    if (!c) return;
    for (const close of [() => c.delayCanceller && c.delayCanceller(), () => c.reader && c.reader.cancel(),
      () => c.abortController && c.abortController.abort()]) {
      try {
        const p = close();
        if (p && p.catch) p.catch(() => {});
      } catch (_) { /* already closed */ }
    }
  }

  // start opens a new stream with #live's attributes.
  function start() {
    if (!liveAttrs || byId("live") || typeof htmx === "undefined") return;
    const el = document.createElement("div");
    for (const [name, value] of liveAttrs) el.setAttribute(name, value);
    liveParent.insertBefore(el, liveParent.firstChild);
    htmx.process(el);
  }

  // restartSoon replaces a stream that could not open with a new one after
  // RESTART_AFTER; one refused 429 (this client holds too many streams
  // already, app/events_access.go) waits its Retry-After of 30 s instead of
  // knocking every second. A 503 (busy, or a proxy while the server
  // restarts) is retried at the normal pace.
  function restartSoon(status) {
    if (paused || ended) return;
    show("reconnecting");
    const refused = status === 429;
    if (restartTimer && !refused) return;
    if (refused) stop(); // stop clears the timer too
    else clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      restartTimer = 0;
      if (paused || ended) return;
      stop();
      start();
    }, refused ? 30000 : RESTART_AFTER);
  }

  function pause() {
    paused = true;
    stop();
    show("paused");
  }

  function resume() {
    paused = false;
    show("connecting");
    start();
  }

  function sessionEnded() {
    if (ended) return;
    ended = true;
    stop();
    show("ended");
    const note = byId("session-ended");
    if (!note) return;
    const link = byId("session-ended-link");
    if (link && link.hasAttribute("data-next")) {
      link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    note.hidden = false;
  }

  document.addEventListener("htmx:sse:before:connection", (e) => {
    if (!isLive(e.target)) return;
    if (paused || ended) {
      e.detail.connection.cancelled = true;
      e.preventDefault();
      return;
    }
    if (e.detail.connection.attempt > 0) show("reconnecting");
  });
  document.addEventListener("htmx:sse:after:connection", (e) => {
    if (!isLive(e.target)) return;
    connection = e.detail.connection;
    if (!paused && !ended) show("live");
  });
  document.addEventListener("htmx:sse:error", (e) => {
    if (!isLive(e.target)) return;
    const status = e.detail.status;
    if (status === 401) sessionEnded();
    else if (status === 429) restartSoon(status);
    else if (!paused && !ended) show("reconnecting");
  });
  document.addEventListener("htmx:sse:before:message", (e) => {
    if (paused || ended) {
      e.detail.cancelled = true;
      e.preventDefault();
    }
  });
  document.addEventListener("htmx:sse:close", (e) => {
    // A stream that closed while the page wants it (not paused, the session
    // not ended, #live still there): open a new one.
    if (isLive(e.target) && e.detail.reason !== "message") restartSoon();
  });
  document.addEventListener("session-ended", (e) => {
    if (e.target && e.target.id === "live") sessionEnded();
  });

  // Any htmx answer 401 is the session ending: never swapped into a panel.
  // A first stream request that did not open a stream (busy, a proxy's
  // error page) is not swapped either: it is retried.
  document.addEventListener("htmx:before:response", (e) => {
    const ctx = e.detail.ctx || {};
    const status = ctx.response && ctx.response.status;
    if (status === 401) {
      e.preventDefault();
      sessionEnded();
      return;
    }
    if (isLive(e.target)) {
      e.preventDefault();
      restartSoon(status);
    }
  });
  document.addEventListener("htmx:error", (e) => {
    if (isLive(e.target)) restartSoon();
  });

  // ---- keeping the reader's place across swaps ----

  // The attributes that tell apart elements without an id (the buttons of
  // an agent card, say) inside the nearest ancestor that has one.
  const KEY_ATTRS = ["data-action", "name", "hx-post", "hx-get", "href", "formaction", "type", "value", "aria-label"];

  function summaryText(el) {
    const s = el.tagName === "DETAILS" ? el.querySelector(":scope > summary") : null;
    return s ? s.textContent.trim() : null;
  }

  // keyOf names el so that its counterpart in new markup can be found: by id,
  // else by the nearest ancestor with an id, a selector of its telling
  // attributes (and, for <details>, its summary) and its rank among matches.
  function keyOf(el) {
    if (el.id) return { id: el.id };
    let anchor = el.parentElement;
    while (anchor && !anchor.id) anchor = anchor.parentElement;
    if (!anchor) return null;
    let sel = el.tagName.toLowerCase();
    for (const name of KEY_ATTRS) {
      const v = el.getAttribute(name);
      if (v !== null) sel += "[" + name + '="' + CSS.escape(v) + '"]';
    }
    const key = { anchor: anchor.id, sel, text: summaryText(el), n: 0 };
    key.n = matches(anchor, key).indexOf(el);
    return key;
  }

  function matches(anchor, key) {
    return [...anchor.querySelectorAll(key.sel)].filter((x) => key.text === null || summaryText(x) === key.text);
  }

  function find(key) {
    if (!key) return null;
    if (key.id) return byId(key.id);
    const anchor = byId(key.anchor);
    return anchor && key.n >= 0 ? matches(anchor, key)[key.n] || null : null;
  }

  // pathOf is where a text node (or element) sits under the nearest element
  // with an id, child index by child index; nodeAt finds it again.
  function pathOf(node) {
    const idx = [];
    let n = node;
    while (n && !(n.nodeType === 1 && n.id)) {
      const p = n.parentNode;
      if (!p) return null;
      idx.unshift(Array.prototype.indexOf.call(p.childNodes, n));
      n = p;
    }
    return n ? { anchor: n.id, idx } : null;
  }

  function nodeAt(path) {
    if (!path) return null;
    let n = byId(path.anchor);
    for (const i of path.idx) n = n && n.childNodes[i];
    return n || null;
  }

  const nodeLength = (n) => (n.nodeType === 3 ? n.length : n.childNodes.length);

  const places = new WeakMap(); // swap context -> what the reader had

  document.addEventListener("htmx:before:swap", (e) => {
    const ctx = e.detail.ctx;
    if (!ctx) return;
    const targets = (e.detail.tasks || [])
      .map((t) => (typeof t.target === "string" ? document.querySelector(t.target) : t.target))
      .filter((t) => t && t.nodeType === 1);
    if (!targets.length) return;
    const inside = (n) => !!n && targets.some((t) => t.contains(n));
    const place = { focus: null, details: [], scroll: [], selection: null };
    const active = document.activeElement;
    if (active && active !== document.body && inside(active)) {
      place.focus = { el: active, key: keyOf(active), start: null, end: null };
      try {
        place.focus.start = active.selectionStart;
        place.focus.end = active.selectionEnd;
      } catch (_) { /* no caret */ }
    }
    for (const t of targets) {
      for (const d of t.querySelectorAll("details")) place.details.push({ el: d, key: keyOf(d), open: d.open });
      for (const el of [t, ...t.querySelectorAll(".table-scroll, pre, [data-keep-scroll]")]) {
        if (el.scrollTop || el.scrollLeft) place.scroll.push({ el, key: keyOf(el), top: el.scrollTop, left: el.scrollLeft });
      }
    }
    const sel = window.getSelection();
    if (sel && sel.rangeCount && !sel.isCollapsed && inside(sel.anchorNode) && inside(sel.focusNode)) {
      place.selection = {
        anchor: pathOf(sel.anchorNode), anchorOffset: sel.anchorOffset,
        focus: pathOf(sel.focusNode), focusOffset: sel.focusOffset, text: sel.toString(),
      };
    }
    places.set(ctx, place);
  });

  document.addEventListener("htmx:after:swap", (e) => {
    const place = e.detail.ctx && places.get(e.detail.ctx);
    if (!place) return;
    places.delete(e.detail.ctx);
    const counterpart = (saved) => (saved.el.isConnected ? saved.el : find(saved.key));
    for (const d of place.details) {
      const el = counterpart(d);
      if (el && el.tagName === "DETAILS" && el.open !== d.open) el.open = d.open;
    }
    for (const s of place.scroll) {
      const el = counterpart(s);
      if (el && (el.scrollTop !== s.top || el.scrollLeft !== s.left)) {
        el.scrollTop = s.top;
        el.scrollLeft = s.left;
      }
    }
    const f = place.focus;
    const active = document.activeElement;
    // An element a swap moved and put back (hx-preserve without
    // moveBefore) is connected again but has lost the focus: it counts too.
    if (f && active !== f.el && (!active || active === document.body)) {
      const el = f.el.isConnected ? f.el : find(f.key);
      if (el && typeof el.focus === "function") {
        el.focus({ preventScroll: true });
        if (f.start !== null && f.start !== undefined) {
          try {
            el.setSelectionRange(f.start, f.end);
          } catch (_) { /* no caret */ }
        }
      }
    }
    const s = place.selection;
    const sel = window.getSelection();
    if (s && sel && (sel.isCollapsed || !sel.anchorNode || !sel.anchorNode.isConnected)) {
      const a = nodeAt(s.anchor);
      const b = nodeAt(s.focus);
      if (a && b) {
        try {
          sel.setBaseAndExtent(a, Math.min(s.anchorOffset, nodeLength(a)), b, Math.min(s.focusOffset, nodeLength(b)));
          if (sel.toString() !== s.text) sel.removeAllRanges(); // the text changed: no stale selection
        } catch (_) { /* the nodes changed shape */ }
      }
    }
  });

  // A morph would take away the open attribute the reader gave a <details>
  // (the server renders them closed): keep it, and keep a closed one closed.
  if (typeof htmx !== "undefined") {
    htmx.registerExtension("hoss-keep-place", {
      htmx_before_morph_attr: (elt, detail) => (elt.tagName === "DETAILS" && detail.attrName === "open" ? false : undefined),
    });
  }

  // The bar and its toggle may be swapped in again (history restore swaps
  // the whole body): the toggle is handled where its clicks arrive, and
  // every swap shows the bar and its state again.
  document.addEventListener("click", (e) => {
    if (e.target && e.target.closest && e.target.closest("#live-toggle")) paused ? resume() : pause();
  });
  function showBar() {
    const el = byId("live");
    if (el) remember(el);
    const bar = byId("live-bar");
    if (bar) bar.hidden = false;
  }
  document.addEventListener("htmx:after:swap", () => {
    showBar();
    show(ended ? "ended" : paused ? "paused" : connection ? "live" : "connecting");
  });
  document.addEventListener("DOMContentLoaded", () => {
    showBar();
    if (!paused && !ended && !connection) show("connecting");
  });
})();
