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
    renderWallets();
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


  // ---- Pay from a browser wallet: EIP-6963 discovery (and the legacy window.ethereum), switch or
  // add the chain, send the exact amount due (native transfer, or ERC-20 transfer(address,uint256)
  // to the deposit address), show the hash. Talks only to the wallet: no other request leaves the page.
  var networks = JSON.parse(root.getAttribute('data-networks') || '{}');
  var wallets = [];
  var busy = false;
  // "<method> <amount due>" of the last payment sent from a wallet on this page.
  var sentFor = null;
  // Listeners waiting for a wallet to announce itself again (see stillThere).
  var heard = [];

  function pad64(hex) { return ('0000000000000000000000000000000000000000000000000000000000000000' + hex).slice(-64); }
  function addWallet(name, provider, uuid) {
    if (!provider || typeof provider.request !== 'function') return;
    for (var k = 0; k < wallets.length; k++) if (wallets[k].provider === provider || (uuid && wallets[k].uuid === uuid)) return;
    var w = { name: String(name || t.browser_wallet).slice(0, 40), provider: provider, uuid: uuid };
    // A wallet that goes away mid-flow (extension disabled or removed) may never answer the request
    // it holds: its EIP-1193 'disconnect' event ends the flow instead of leaving the page waiting
    // ('connect' again makes it usable again).
    function arm() {
      w.lost = new Promise(function (resolve, reject) { w.gone = reject; });
      w.lost.catch(function () {});
    }
    arm();
    try {
      if (typeof provider.on === 'function') {
        provider.on('disconnect', function () { w.gone({ kassa: 'gone' }); });
        provider.on('connect', arm);
      }
    } catch (e) { /* a provider without events */ }
    wallets.push(w);
    renderWallets();
  }
  window.addEventListener('eip6963:announceProvider', function (e) {
    var d = e.detail || {};
    for (var k = 0; k < heard.length; k++) heard[k](d.info && d.info.uuid);
    addWallet(d.info && d.info.name, d.provider, d.info && d.info.uuid);
  });
  // Whether wallet w is still installed: an EIP-6963 wallet answers a new request for providers
  // within 400 ms; the legacy one is still window.ethereum.
  function stillThere(w) {
    if (typeof w.provider.request !== 'function') return Promise.resolve(false);
    if (!w.uuid) return Promise.resolve(window.ethereum === w.provider);
    return new Promise(function (resolve) {
      var done = false;
      function on(uuid) { if (uuid === w.uuid && !done) { done = true; resolve(true); } }
      heard.push(on);
      window.dispatchEvent(new Event('eip6963:requestProvider'));
      setTimeout(function () { heard.splice(heard.indexOf(on), 1); if (!done) resolve(false); }, 400);
    });
  }
  // The wallet went away: its button goes (focus moves to the amount, which is still there) and
  // the customer is told how to pay without it.
  function dropWallet(w, hadFocus) {
    var box = $('browser-wallets');
    hadFocus = hadFocus && (!document.activeElement || document.activeElement === document.body || (box && box.contains(document.activeElement)));
    wallets = wallets.filter(function (x) { return x !== w; });
    var buttons = box ? box.querySelectorAll('button') : [];
    for (var k = buttons.length - 1; k >= 0; k--) box.removeChild(buttons[k]);
    renderWallets();
    if (hadFocus && $('amount')) $('amount').focus();
  }
  window.dispatchEvent(new Event('eip6963:requestProvider'));
  setTimeout(function () { if (!wallets.length && window.ethereum) addWallet(t.browser_wallet, window.ethereum); }, 300);

  // What to send for method m from account `from`, read from its EIP-681 link (base units due).
  function planFor(m, from) {
    var r = /^ethereum:(0x[0-9a-fA-F]{40})@(\d+)(\/transfer)?\?(.*)$/.exec(m.payment_uri || '');
    var net = networks[m.chain];
    if (!r || !net || Number(r[2]) !== net.chain_id) return null;
    var q = {};
    r[4].split('&').forEach(function (kv) { var i = kv.indexOf('='); q[kv.slice(0, i)] = kv.slice(i + 1); });
    if (r[3]) {
      if (String(q.address).toLowerCase() !== m.address.toLowerCase() || !/^\d+$/.test(q.uint256 || '')) return null;
      var units = BigInt(q.uint256);
      return { units: units, token: r[1], tx: { from: from, to: r[1], value: '0x0', data: '0xa9059cbb' + pad64(m.address.slice(2).toLowerCase()) + pad64(units.toString(16)) } };
    }
    if (r[1].toLowerCase() !== m.address.toLowerCase() || !/^\d+$/.test(q.value || '')) return null;
    var wei = BigInt(q.value);
    return { units: wei, tx: { from: from, to: m.address, value: '0x' + wei.toString(16) } };
  }

  function renderWallets() {
    var box = $('browser-wallets');
    if (!box || !wallets) return;
    var m = methodOf(inv);
    var v = viewOf(inv);
    // Not again for the amount just sent (a second click would pay twice); a new amount due (the
    // rest of a partial payment, another method) offers it again.
    var show = wallets.length > 0 && !!m && !!networks[m.chain] && (v === 'waiting' || v === 'partial') && !!planFor(m, '0x') && /[1-9]/.test(m.amount_due)
      && sentFor !== m.method + ' ' + m.amount_due;
    setHidden(box, !show);
    if (!show) return;
    var labelsWanted = wallets.map(function (w) { return fmt(t.pay_with_wallet, { wallet: w.name }); });
    var buttons = box.querySelectorAll('button');
    if (buttons.length !== wallets.length) {
      while (box.firstChild) box.removeChild(box.firstChild);
      wallets.forEach(function (w, i) {
        var b = document.createElement('button');
        b.type = 'button';
        b.className = 'button wallet-button';
        b.addEventListener('click', function () { pay(wallets[i]); });
        box.appendChild(b);
      });
      buttons = box.querySelectorAll('button');
    }
    // aria-disabled, not disabled, while the wallet works: a disabled button would drop the
    // keyboard focus to <body>; pay() ignores presses while busy.
    for (var k = 0; k < buttons.length; k++) { setText(buttons[k], labelsWanted[k]); buttons[k].setAttribute('aria-disabled', busy ? 'true' : 'false'); }
  }

  function say(text, error) {
    var el = $('wallet-status');
    if (!el) return;
    while (el.firstChild) el.removeChild(el.firstChild);
    el.className = 'wallet-status' + (error ? ' error' : '');
    el.textContent = text;
    setHidden(el, false);
  }
  function sent(hash, net) {
    var el = $('wallet-status');
    if (!el) return;
    say(t.wallet_sent + ' ');
    var code = document.createElement('code');
    code.textContent = hash;
    if (net.explorer_tx_url) {
      var a = document.createElement('a');
      a.setAttribute('href', net.explorer_tx_url.replace('{txid}', hash));
      a.setAttribute('rel', 'noreferrer noopener');
      a.setAttribute('aria-label', fmt(t.view_transaction, { txid: hash }));
      a.appendChild(code);
      el.appendChild(a);
    } else el.appendChild(code);
  }
  function codeOf(err) {
    if (!err) return undefined;
    if (typeof err.code === 'number') return err.code;
    var inner = err.data && err.data.originalError;
    return inner && typeof inner.code === 'number' ? inner.code : undefined;
  }
  // Errors wallets raise when their extension was disabled, removed or restarted under the page.
  var GONE = /disconnected|extension context invalidated|page reload required|receiving end does not exist|port closed|provider (is )?(not available|unavailable|gone)/i;
  function isGone(err) {
    var code = codeOf(err);
    return (err && err.kassa === 'gone') || code === 4900 || err instanceof TypeError || GONE.test(String((err && err.message) || ''));
  }
  function errorText(err, vars) {
    if (err && err.kassa) return err.kassa === 'failed' ? fmt(t.wallet_failed, { message: err.message }) : fmt(t['wallet_' + err.kassa], vars);
    var code = codeOf(err);
    var msg = String((err && err.message) || err || '');
    if (code === 4001 || code === 4100) return t.wallet_rejected;
    if (code === -32002) return t.wallet_busy;
    if (isGone(err) || code === 4901) return fmt(t.wallet_gone, vars);
    if (/insufficient funds|exceeds balance/i.test(msg)) return fmt(t.wallet_insufficient, vars);
    return fmt(t.wallet_failed, { message: msg.slice(0, 200) });
  }
  // One call to the wallet; it fails as 'gone' as soon as the wallet disconnects, even if the call never answers.
  function request(w, method, params) {
    return Promise.race([w.lost, Promise.resolve().then(function () { return w.provider.request({ method: method, params: params }); })]);
  }
  function sameChain(id, want) { return typeof id === 'string' && parseInt(id, 16) === want; }
  function switchChain(w, net) {
    var id = '0x' + net.chain_id.toString(16);
    return request(w, 'wallet_switchEthereumChain', [{ chainId: id }]).catch(function (err) {
      if (codeOf(err) !== 4902) throw err;
      if (!net.rpc_urls.length) throw { kassa: 'wrong_chain' };
      return request(w, 'wallet_addEthereumChain', [{
        chainId: id, chainName: net.name, rpcUrls: net.rpc_urls, blockExplorerUrls: net.explorer_urls.length ? net.explorer_urls : undefined,
        nativeCurrency: { name: net.native_symbol, symbol: net.native_symbol, decimals: 18 },
      }]);
    });
  }
  // Whether `from` holds the amount (the wallet checks the fee itself); a wallet that cannot answer is given the benefit of the doubt.
  function enough(w, plan, from) {
    var q = plan.token
      ? request(w, 'eth_call', [{ to: plan.token, data: '0x70a08231' + pad64(from.slice(2).toLowerCase()) }, 'latest'])
      : request(w, 'eth_getBalance', [from, 'latest']);
    return q.then(function (hex) { return !/^0x[0-9a-fA-F]+$/.test(hex) || BigInt(hex) >= plan.units; }, function (err) {
      if (isGone(err)) throw err;
      return true;
    });
  }
  function pay(w) {
    var m = methodOf(inv);
    var net = m && networks[m.chain];
    if (busy || !net) return;
    var vars = { wallet: w.name, network: net.name, amount: m.amount_due, asset: m.asset };
    var box = $('browser-wallets');
    var focused = !!box && box.contains(document.activeElement);
    var from;
    busy = true;
    renderWallets();
    say(fmt(t.wallet_connecting, vars));
    request(w, 'eth_requestAccounts', [])
      .then(function (accounts) {
        from = accounts && accounts[0];
        if (!/^0x[0-9a-fA-F]{40}$/.test(String(from))) throw { code: 4100 };
        return request(w, 'eth_chainId', []);
      })
      .then(function (id) {
        if (sameChain(id, net.chain_id)) return id;
        say(fmt(t.wallet_switching, vars));
        return switchChain(w, net).then(function () { return request(w, 'eth_chainId', []); });
      })
      .then(function (id) {
        if (!sameChain(id, net.chain_id)) throw { kassa: 'wrong_chain' };
        var plan = planFor(methodOf(inv), from);
        if (!plan) throw { kassa: 'failed', message: 'no amount due' };
        return enough(w, plan, from).then(function (ok) {
          if (!ok) throw { kassa: 'insufficient' };
          say(fmt(t.wallet_confirm, vars));
          return request(w, 'eth_sendTransaction', [plan.tx]);
        });
      })
      .then(function (hash) {
        if (!/^0x[0-9a-fA-F]{64}$/.test(String(hash))) throw { kassa: 'failed', message: 'no transaction hash' };
        sentFor = m.method + ' ' + m.amount_due;
        sent(hash, net);
        // The pressed button goes away: focus moves to the message with the hash, not to <body>.
        if (focused && box.contains(document.activeElement)) {
          var st = $('wallet-status');
          st.setAttribute('tabindex', '-1');
          st.focus();
        }
        fetchOnce();
      })
      .catch(function (err) {
        // A user's refusal is an answer from a wallet that is there; anything else may mean the
        // wallet went away (extension disabled, announcement withdrawn): then it is dropped.
        var code = codeOf(err);
        if (code === 4001 || code === -32002 || (err && err.kassa && err.kassa !== 'gone')) return say(errorText(err, vars), true);
        return (isGone(err) ? Promise.resolve(false) : stillThere(w)).then(function (there) {
          if (there) return say(errorText(err, vars), true);
          say(fmt(t.wallet_gone, vars), true);
          dropWallet(w, focused);
        });
      })
      .then(function () { busy = false; renderWallets(); });
  }

  setInterval(tick, 1000);
  accept(inv);
  if (viewOf(inv) !== 'paid' && viewOf(inv) !== 'invalid') startLive();
})();
