// Kassa dashboard: "Send with your browser wallet" for an approved EVM refund (served as
// /dashboard/static/refund-wallet.js; the invoice page allows script-src 'self' only when it shows
// such a refund). Finds a wallet (EIP-6963, or the legacy window.ethereum), asks it for the
// treasury account, switches it to the refund's chain, sends exactly the transaction Kassa prepared
// (eth_sendTransaction: the native coin to the customer, or the ERC-20 transfer call to the token
// contract) and puts the hash into the page's "report transaction" form, which it submits: Kassa
// then checks the transaction on chain. Talks only to the wallet; only text and attributes are set.
(function () {
  'use strict';
  var buttons = document.querySelectorAll('button.wallet-send');
  if (!buttons.length) return;
  var wallets = [];
  var busy = false;

  function $(id) { return document.getElementById(id); }
  function say(id, text, error) {
    var el = $('wallet-status-' + id);
    if (!el) return;
    el.className = 'wallet-status' + (error ? ' error' : '');
    el.textContent = text;
  }
  function addWallet(name, provider, uuid) {
    if (!provider || typeof provider.request !== 'function') return;
    for (var k = 0; k < wallets.length; k++) if (wallets[k].provider === provider || (uuid && wallets[k].uuid === uuid)) return;
    wallets.push({ name: String(name || 'browser wallet').slice(0, 40), provider: provider, uuid: uuid });
    show();
  }
  function show() {
    var w = wallets[0];
    for (var k = 0; k < buttons.length; k++) {
      var id = buttons[k].getAttribute('data-refund');
      buttons[k].textContent = 'Send with ' + w.name;
      buttons[k].hidden = false;
      var none = $('wallet-none-' + id);
      if (none) none.hidden = true;
      var before = sessionStorage.getItem('kassa-refund-sent:' + id);
      if (before) {
        // Sent from this browser already but not reported (the page was left): report, don't send twice.
        buttons[k].hidden = true;
        var input = $('txid-' + id);
        if (input && !input.value) input.value = before;
        say(id, 'Your wallet already sent ' + before + ' for this refund: press "Report transaction".');
      }
    }
  }
  window.addEventListener('eip6963:announceProvider', function (e) {
    var d = e.detail || {};
    addWallet(d.info && d.info.name, d.provider, d.info && d.info.uuid);
  });
  window.dispatchEvent(new Event('eip6963:requestProvider'));
  setTimeout(function () { if (!wallets.length && window.ethereum) addWallet('browser wallet', window.ethereum); }, 300);

  function codeOf(err) {
    if (!err) return undefined;
    if (typeof err.code === 'number') return err.code;
    var inner = err.data && err.data.originalError;
    return inner && typeof inner.code === 'number' ? inner.code : undefined;
  }
  function errorText(err) {
    if (err && err.kassa) return err.kassa;
    var code = codeOf(err);
    if (code === 4001) return 'You rejected the transaction in your wallet. Nothing was sent.';
    if (code === 4100) return 'The wallet did not give access to an account.';
    if (code === -32002) return 'Your wallet is already asking for something: open it and answer there first.';
    var msg = String((err && err.message) || err || '');
    if (/insufficient funds|exceeds balance/i.test(msg)) return 'The treasury account does not hold enough for this refund and its gas.';
    return 'The wallet could not send it: ' + msg.slice(0, 200);
  }
  function sameChain(id, want) { return typeof id === 'string' && parseInt(id, 16) === want; }

  function send(button) {
    if (busy) return;
    var id = button.getAttribute('data-refund');
    var tx = JSON.parse(button.getAttribute('data-tx'));
    var net = JSON.parse(button.getAttribute('data-network'));
    var w = wallets[0];
    var p = w.provider;
    var from;
    busy = true;
    button.setAttribute('aria-disabled', 'true');
    say(id, 'Connecting to ' + w.name + '…');
    p.request({ method: 'eth_requestAccounts', params: [] })
      .then(function (accounts) {
        accounts = (accounts || []).map(String);
        if (tx.from) {
          var want = String(tx.from).toLowerCase();
          from = accounts.filter(function (a) { return a.toLowerCase() === want; })[0];
          if (!from) throw { kassa: 'Select your treasury account ' + tx.from + ' in ' + w.name + ' (it offers ' + (accounts[0] || 'no account') + '), then press the button again.' };
        } else from = accounts[0];
        if (!/^0x[0-9a-fA-F]{40}$/.test(String(from))) throw { code: 4100 };
        return p.request({ method: 'eth_chainId', params: [] });
      })
      .then(function (chainId) {
        if (sameChain(chainId, tx.chain_id)) return chainId;
        say(id, 'Switching ' + w.name + ' to ' + net.name + '…');
        var hex = '0x' + tx.chain_id.toString(16);
        return p.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: hex }] }).catch(function (err) {
          if (codeOf(err) !== 4902 || !net.rpc_urls.length) throw err;
          return p.request({ method: 'wallet_addEthereumChain', params: [{
            chainId: hex, chainName: net.name, rpcUrls: net.rpc_urls, blockExplorerUrls: net.explorer_urls.length ? net.explorer_urls : undefined,
            nativeCurrency: { name: net.native_symbol, symbol: net.native_symbol, decimals: 18 },
          }] });
        }).then(function () { return p.request({ method: 'eth_chainId', params: [] }); });
      })
      .then(function (chainId) {
        if (!sameChain(chainId, tx.chain_id)) throw { kassa: 'The wallet is not on ' + net.name + ' (chain id ' + tx.chain_id + '): switch it there and press the button again.' };
        say(id, 'Confirm the transaction in ' + w.name + '.');
        var call = { from: from, to: tx.to, value: '0x' + BigInt(tx.value).toString(16) };
        if (tx.data && tx.data !== '0x') call.data = tx.data;
        return p.request({ method: 'eth_sendTransaction', params: [call] });
      })
      .then(function (hash) {
        if (!/^0x[0-9a-fA-F]{64}$/.test(String(hash))) throw { kassa: 'The wallet answered without a transaction hash.' };
        try { sessionStorage.setItem('kassa-refund-sent:' + id, hash); } catch (e) { /* private mode */ }
        button.hidden = true;
        say(id, 'Sent from your wallet: ' + hash + '. Reporting it to Kassa…');
        var input = $('txid-' + id);
        var form = $('txid-form-' + id);
        input.value = hash;
        form.submit();
      })
      .catch(function (err) {
        say(id, errorText(err), true);
        button.setAttribute('aria-disabled', 'false');
      })
      .then(function () { busy = false; });
  }
  for (var k = 0; k < buttons.length; k++) {
    buttons[k].addEventListener('click', function (e) { send(e.currentTarget); });
  }
  // A reported refund's page no longer shows its button: forget what was sent for it.
  var keys = [];
  for (var i = 0; i < sessionStorage.length; i++) keys.push(sessionStorage.key(i));
  keys.forEach(function (key) {
    if (key && key.indexOf('kassa-refund-sent:') === 0 && !$('wallet-send-' + key.slice(18))) sessionStorage.removeItem(key);
  });
})();
