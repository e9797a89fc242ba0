/**
 * GET /docs: a self-contained API reference rendered from /openapi.json in the browser (no
 * third-party scripts or fonts, so it works offline and under a strict CSP).
 */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Kassa API reference</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#14213d;color:#fff;padding:20px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
main{max-width:980px;margin:0 auto;padding:20px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;margin:14px 0;padding:14px 18px}
h2{font-size:18px;margin:28px 0 8px}.m{display:inline-block;min-width:62px;font-weight:700;font-family:ui-monospace,monospace}
.get{color:#0a7d32}.post{color:#1a5fb4}.patch{color:#a05a00}.put{color:#7a3db8}.delete{color:#b3261e}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}pre{background:#f1f3f5;padding:10px;border-radius:6px;overflow:auto}
details summary{cursor:pointer}.tabs button{font:inherit;border:1px solid #ccd;background:#fff;border-radius:4px;margin:4px 4px 0 0;padding:2px 8px;cursor:pointer}.tabs button.on{background:#14213d;color:#fff}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;text-align:left;padding:4px 6px;vertical-align:top}
</style></head><body>
<header><h1>Kassa API reference</h1><p>Authenticate with <code>Authorization: Bearer kassa_sk_…</code>. Amounts are decimal strings. Machine-readable spec: <a style="color:#9cd" href="/openapi.json">/openapi.json</a></p></header>
<main id="root"><p>Loading…</p></main>
<script src="/docs/app.js"></script>
</body></html>`;

export const DOCS_JS = `(async function(){
  const root=document.getElementById('root');
  const esc=s=>String(s==null?'':s).replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
  const spec=await (await fetch('/openapi.json')).json();
  const schemas=(spec.components&&spec.components.schemas)||{};
  const deref=s=>s&&s.$ref?schemas[s.$ref.split('/').pop()]:s;
  function render(s,depth){s=deref(s);if(!s||depth>4)return '';
    if(s.type==='object'&&s.properties){return '<table>'+Object.entries(s.properties).map(([k,v])=>{const d=deref(v)||{};
      return '<tr><td><code>'+esc(k)+'</code>'+((s.required||[]).includes(k)?' <small>required</small>':'')+'</td><td>'+esc(d.type||(d.anyOf?'one of':'')||'')+(d.enum?' '+esc(d.enum.join(' | ')):'')+'</td><td>'+esc(d.description||'')+(d.type==='object'||d.properties?render(d,depth+1):'')+'</td></tr>'}).join('')+'</table>'}
    return '<code>'+esc(s.type||'')+'</code>'}
  const groups={};
  for(const [path,ops] of Object.entries(spec.paths||{}))for(const [method,op] of Object.entries(ops)){(groups[(op.tags||['Other'])[0]]??=[]).push({path,method,op})}
  let html='<p>'+esc(spec.info.description||'')+'</p>';
  for(const [tag,list] of Object.entries(groups)){html+='<h2>'+esc(tag)+'</h2>';
    for(const {path,method,op} of list){const body=op.requestBody&&op.requestBody.content&&op.requestBody.content['application/json'];
      const ok=Object.entries(op.responses||{}).find(([k])=>k.startsWith('2'));const okSchema=ok&&ok[1].content&&ok[1].content['application/json'];
      html+='<section><div><span class="m '+method+'">'+method.toUpperCase()+'</span> <code>'+esc(path)+'</code></div><p>'+esc(op.summary||'')+'</p>'+
      (op.parameters&&op.parameters.length?'<details><summary>Parameters</summary><table>'+op.parameters.map(p=>'<tr><td><code>'+esc(p.name)+'</code></td><td>'+esc(p.in)+'</td><td>'+esc(p.description||'')+'</td></tr>').join('')+'</table></details>':'')+
      (body?'<details><summary>Request body</summary>'+render(body.schema,0)+'</details>':'')+
      (okSchema?'<details><summary>Response '+esc(ok[0])+'</summary>'+render(okSchema.schema,0)+'</details>':'')+
      (op['x-kassa-scopes']&&op['x-kassa-scopes'].length?'<p><small>Scopes: '+op['x-kassa-scopes'].map(x=>'<code>'+esc(x)+'</code>').join(', ')+'</small></p>':(op.security&&!op.security.length?'<p><small>No API key needed.</small></p>':''))+
      (body&&body.example!==undefined?'<details><summary>Example request body</summary><pre>'+esc(JSON.stringify(body.example,null,2))+'</pre></details>':'')+
      (ok&&ok[1].content?'<details><summary>Example response '+esc(ok[0])+'</summary><pre>'+esc(okSchema?JSON.stringify(okSchema.example,null,2):Object.values(ok[1].content)[0].example)+'</pre></details>':'')+
      (op['x-codeSamples']?'<details open><summary>Examples</summary><div class="tabs">'+op['x-codeSamples'].map((s,i)=>'<button type="button" data-i="'+i+'"'+(i?'':' class="on"')+'>'+esc(s.label)+'</button>').join('')+'</div>'+op['x-codeSamples'].map((s,i)=>'<pre data-i="'+i+'"'+(i?' hidden':'')+'>'+esc(s.source)+'</pre>').join('')+'</details>':'')+
      '<details><summary>Errors</summary><p>'+Object.keys(op.responses||{}).filter(k=>!k.startsWith('2')).map(esc).join(', ')+' — body: <code>{"error":{"type","code","message","param","request_id"}}</code></p></details></section>'}}
  root.innerHTML=html;
  root.addEventListener('click',e=>{const b=e.target.closest('.tabs button');if(!b)return;const d=b.closest('details');
    d.querySelectorAll('.tabs button').forEach(x=>x.classList.toggle('on',x===b));d.querySelectorAll('pre[data-i]').forEach(p=>{p.hidden=p.dataset.i!==b.dataset.i})});
})();`;
