// Kassa checkout page script (served as /pay/static/checkout.js; CSP script-src 'self').
// Mirrors src/checkout/view.ts. Live status over SSE with a polling fallback, method switching
// without reloads, copy buttons and the countdown. Only textContent / attributes are set: no HTML
// strings are ever parsed.
(function () {
  'use strict';
  var root = document.getElementById('checkout');
  if (!root) return;
  var inv = JSON.parse(root.getAttribute('data-invoice'));
  var t = JSON.parse(root.getAttribute('data-i18n'));
  var labels = JSON.parse(root.getAttribute('data-labels'));
  var lang = root.getAttribute('data-lang') || 'en';
  var chosen = root.getAttribute('data-method') || '';
  var clockOffset = 0;
  var shownQrFor = null;
  var redirectTimer = null;
  var pollTimer = null;
  var source = null;
  var POLL_MS = 4000;
  var REDIRECT_MS = 5000;

  function $(id) { return document.getElementById(id); }
  function fmt(s, vars) {
    return String(s).replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
    });
  }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function setHidden(el, hidden) { if (el && el.hidden !== hidden) el.hidden = hidden; }
  function nonZero(a) { return /[1-9]/.test(a); }

  function viewOf(i) {
    if (i.status === 'new') return nonZero(i.amount_paid) ? 'partial' : 'waiting';
    if (i.status === 'processing') return 'detected';
    if (i.status === 'settled') return 'paid';
    if (i.status === 'expired') return 'expired';
    return 'invalid';
  }
  function required(i, method) {
    for (var k = 0; k < i.payment_methods.length; k++) if (i.payment_methods[k].method === method) return i.payment_methods[k].confirmations_required;
    return 0;
  }
  function confirmations(i) {
    var n = Infinity, m = 0;
    i.payments.forEach(function (p) {
      var req = required(i, p.method);
      if (p.confirmations < req || n === Infinity) n = Math.min(n, p.confirmations);
      m = Math.max(m, req);
    });
    if (n === Infinity) n = 0;
    return { n: Math.min(n, m), m: m };
  }
  function statusText(i) {
    var v = viewOf(i);
    var vars = { paid: i.amount_paid, due: i.amount_due, currency: i.currency, amount: i.amount, merchant: i.merchant_name };
    if (v === 'waiting') return { title: t.status_waiting, detail: t.status_waiting_detail, note: '' };
    if (v === 'partial') return { title: t.status_partial, detail: fmt(t.status_partial_detail, vars), note: '' };
    if (v === 'detected') return { title: t.status_detected, detail: fmt(t.status_detected_detail, confirmations(i)), note: '' };
    if (v === 'paid') {
      var notes = [];
      if (i.exception === 'paid_over') notes.push(fmt(t.note_overpaid, vars));
      if (i.exception === 'paid_late') notes.push(t.note_late);
      return { title: t.status_paid, detail: fmt(t.status_paid_detail, vars), note: notes.join(' ') };
    }
    if (v === 'expired') return { title: t.status_expired, detail: fmt(t.status_expired_detail, vars), note: nonZero(i.amount_paid) ? fmt(t.note_expired_partial, vars) : '' };
    return { title: t.status_invalid, detail: fmt(t.status_invalid_detail, vars), note: '' };
  }
  function paymentLine(i, p) {
    var m = required(i, p.method);
    if (p.status === 'confirmed' && p.confirmations >= m) return fmt(t.payment_confirmed, { amount: p.amount, asset: p.asset });
    return fmt(t.payment_pending, { amount: p.amount, asset: p.asset, n: p.confirmations, m: m });
  }
  function methodOf(i) {
    for (var k = 0; k < i.payment_methods.length; k++) if (i.payment_methods[k].method === chosen) return i.payment_methods[k];
    return i.payment_methods[0];
  }
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = String(s % 60);
    if (ss.length < 2) ss = '0' + ss;
    if (h > 0) return h + ':' + (mm < 10 ? '0' : '') + mm + ':' + ss;
    return mm + ':' + ss;
  }
  function query(method, l) {
    return '?method=' + encodeURIComponent(method) + '&lang=' + encodeURIComponent(l || lang);
  }

  function renderMethod(i) {
    var m = methodOf(i);
    if (!m) return;
    chosen = m.method;
    root.setAttribute('data-method', chosen);
    // Language links keep the chosen method.
    var langs = document.querySelectorAll('nav.lang a[data-lang]');
    for (var j = 0; j < langs.length; j++) {
      var want = query(chosen, langs[j].getAttribute('data-lang'));
      if (langs[j].getAttribute('href') !== want) langs[j].setAttribute('href', want);
    }
    var links = document.querySelectorAll('#methods a[data-method]');
    for (var k = 0; k < links.length; k++) {
      if (links[k].getAttribute('data-method') === chosen) links[k].setAttribute('aria-current', 'true');
      else links[k].removeAttribute('aria-current');
    }
    setText($('amount'), m.amount_due);
    setText($('asset'), m.asset);
    setText($('address'), m.address);
    setText($('network'), labels[m.method] || '');
    setText($('send-only'), fmt(t.send_only, { asset: m.asset, network: labels[m.method] || '' }));
    var wallet = $('wallet-link');
    if (wallet && wallet.getAttribute('href') !== m.payment_uri) wallet.setAttribute('href', m.payment_uri);
    var qr = $('qr');
    if (qr && shownQrFor !== m.payment_uri) {
      if (shownQrFor !== null) {
        qr.src = '/pay/' + encodeURIComponent(i.id) + '/qr?method=' + encodeURIComponent(m.method) + '&due=' + encodeURIComponent(m.amount_due);
      }
      qr.alt = fmt(t.qr_alt, { amount: m.amount_due, asset: m.asset });
      qr.setAttribute('data-uri', m.payment_uri);
      shownQrFor = m.payment_uri;
    }
  }

  function paymentItem(i, p) {
    var li = document.createElement('li');
    var line = document.createElement('span');
    line.className = 'pline';
    line.textContent = paymentLine(i, p);
    li.appendChild(line);
    li.appendChild(document.createTextNode(' '));
    var tx = document.createElement('span');
    tx.className = 'tx';
    tx.appendChild(document.createTextNode(t.transaction + ': '));
    var code = document.createElement('code');
    code.textContent = p.txid;
    if (p.explorer_url && /^https?:\/\//i.test(p.explorer_url)) {
      var a = document.createElement('a');
      a.setAttribute('href', p.explorer_url);
      a.setAttribute('rel', 'noreferrer noopener');
      a.setAttribute('aria-label', fmt(t.view_transaction, { txid: p.txid }));
      a.appendChild(code);
      tx.appendChild(a);
    } else tx.appendChild(code);
    li.appendChild(tx);
    return li;
  }

  function render(i) {
    var before = root.getAttribute('data-view');
    inv = i;
    var v = viewOf(i);
    root.setAttribute('data-view', v);
    var st = statusText(i);
    var status = $('status');
    if (status) status.className = 'status status-' + v;
    setText($('status-title'), st.title);
    setText($('status-detail'), st.detail);
    setText($('status-note'), st.note);
    setHidden($('status-note'), !st.note);
    var pay = $('pay');
    var active = document.activeElement;
    var focusWasInPanel = !!(pay && active && pay.contains(active));
    setHidden(pay, !(v === 'waiting' || v === 'partial'));
    renderMethod(i);
    var list = $('payment-list');
    if (list) {
      var items = i.payments.map(function (p) { return paymentItem(i, p); });
      var current = Array.prototype.map.call(list.children, function (li) { return li.textContent + '|' + (li.querySelector('a') ? li.querySelector('a').getAttribute('href') : ''); });
      var next = items.map(function (li) { return li.textContent + '|' + (li.querySelector('a') ? li.querySelector('a').getAttribute('href') : ''); });
      if (current.join('\n') !== next.join('\n')) {
        while (list.firstChild) list.removeChild(list.firstChild);
        items.forEach(function (li) { list.appendChild(li); });
      }
      setHidden($('payments'), items.length === 0);
    }
    // The state changed and the panel holding the focus was hidden (or focus had nowhere to go):
    // move focus to the status heading instead of letting it fall to <body>.
    if (before && before !== v && pay && pay.hidden) {
      active = document.activeElement;
      if (focusWasInPanel || !active || active === document.body) {
        var title = $('status-title');
        if (title) title.focus();
      }
    }
    if (v === 'paid' && i.redirect_url && /^https?:\/\//i.test(i.redirect_url)) {
      var link = $('redirect-link');
      if (link) link.setAttribute('href', i.redirect_url);
      setHidden($('redirect'), false);
      if (!redirectTimer) redirectTimer = setTimeout(function () { window.location.assign(i.redirect_url); }, REDIRECT_MS);
    }
    if (v === 'paid' || v === 'invalid') stopLive();
    tick();
  }

  function tick() {
    var el = $('countdown');
    if (!el) return;
    var left = Date.parse(inv.expires_at) - (Date.now() + clockOffset);
    setText(el, left > 0 ? clock(left) : t.expired_clock);
    if (left <= 0 && viewOf(inv) === 'waiting' && !tick.asked) {
      tick.asked = true;
      setTimeout(fetchOnce, 1500);
    }
  }

  function accept(i) {
    if (!i || i.object !== 'public_invoice' || i.id !== inv.id) return;
    if (i.server_time) clockOffset = Date.parse(i.server_time) - Date.now();
    render(i);
  }

  function fetchOnce() {
    var x = new XMLHttpRequest();
    x.open('GET', '/v1/public/invoices/' + encodeURIComponent(inv.id));
    x.setRequestHeader('Accept', 'application/json');
    x.onload = function () {
      if (x.status === 200) { try { accept(JSON.parse(x.responseText)); } catch (e) { /* keep the last state */ } }
    };
    x.send();
  }

  function startPolling() {
    if (pollTimer) return;
    setHidden($('live-status'), false);
    pollTimer = setInterval(fetchOnce, POLL_MS);
    fetchOnce();
  }
  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
    setHidden($('live-status'), true);
  }
  function stopLive() {
    if (source) source.close();
    source = null;
    stopPolling();
  }

  function startLive() {
    if (!window.EventSource) { startPolling(); return; }
    source = new EventSource('/v1/public/invoices/' + encodeURIComponent(inv.id) + '/stream');
    source.addEventListener('invoice', function (e) {
      stopPolling();
      try { accept(JSON.parse(e.data)); } catch (err) { /* ignore a bad frame */ }
    });
    source.onerror = function () {
      // The browser retries by itself; poll meanwhile. A closed stream (non-200) stays on polling.
      startPolling();
    };
  }

  // Method choice without a reload (links still work without the script).
  var methods = $('methods');
  if (methods) {
    methods.addEventListener('click', function (e) {
      var a = e.target && e.target.closest ? e.target.closest('a[data-method]') : null;
      if (!a || e.metaKey || e.ctrlKey || e.shiftKey || e.button) return;
      e.preventDefault();
      chosen = a.getAttribute('data-method');
      if (window.history && history.replaceState) history.replaceState(null, '', query(chosen));
      renderMethod(inv);
      // Tell screen-reader users what changed, and move focus to the new amount.
      var m = methodOf(inv);
      var said = $('method-status');
      if (m && said) {
        var msg = fmt(t.method_changed, { asset: m.asset, network: labels[m.method] || '', amount: m.amount_due });
        setText(said, '');
        setTimeout(function () { setText(said, msg); }, 50);
      }
      var amount = $('amount');
      if (amount) { amount.setAttribute('tabindex', '-1'); amount.focus(); }
    });
  }

  // Copy buttons (hidden without the script).
  var copyButtons = document.querySelectorAll('button[data-copy]');
  for (var k = 0; k < copyButtons.length; k++) {
    copyButtons[k].hidden = false;
    copyButtons[k].addEventListener('click', function (e) {
      var which = e.currentTarget.getAttribute('data-copy');
      var el = $(which);
      var text = el ? el.textContent : '';
      var done = function () { setText($('copy-status'), ''); setText($('copy-status'), t.copied); };
      var fail = function () { setText($('copy-status'), t.copy_failed); };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fail);
      else fail();
    });
  }

  setInterval(tick, 1000);
  accept(inv);
  if (viewOf(inv) !== 'paid' && viewOf(inv) !== 'invalid') startLive();
})();
