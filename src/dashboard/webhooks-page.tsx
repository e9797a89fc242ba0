/** Settings → Webhooks: the merchant's endpoints (src/webhooks service), create with the secret shown once, delete. */
import type { FC } from 'hono/jsx';
import type { WebhookEndpointObject } from '../webhooks/service.ts';
import { Badge, Csrf, Layout, When, type PageCtx } from './layout.tsx';

export const WebhooksPage: FC<{ ctx: PageCtx; endpoints: WebhookEndpointObject[]; created?: { url: string; secret: string } | undefined; eventTypes: string[] }> = ({ ctx, endpoints, created, eventTypes }) => (
  <Layout ctx={ctx} title="Webhooks">
    <h1>Webhooks</h1>
    <nav class="actions" aria-label="Settings">
      <a class="button secondary" href="/dashboard/settings">General</a>
      <a class="button secondary" href="/dashboard/settings/keys">API keys</a>
      <a class="button" aria-current="page" href="/dashboard/settings/webhooks">Webhooks</a>
    </nav>
    <p></p>
    {created ? (
      <section class="card" id="new-webhook">
        <p class="warn">Signing secret for {created.url}. Copy it now: it is not shown again.</p>
        <p class="secret" id="webhook-secret">{created.secret}</p>
      </section>
    ) : null}
    <section class="card table-wrap" tabindex={0} role="region" aria-label="Webhook endpoints">
      <table id="webhooks">
        <thead><tr><th>URL</th><th>Events</th><th>State</th><th>Created</th><th></th></tr></thead>
        <tbody>
          {endpoints.map((e) => (
            <tr data-endpoint={e.id}>
              <td class="mono break">{e.url}{e.description ? <><br /><span class="muted">{e.description}</span></> : null}</td>
              <td>{e.events.includes('*') ? 'all' : e.events.join(', ')}</td>
              <td>{e.enabled ? <Badge value="ok" /> : <Badge value="disabled" kind="exception" />}{e.disabled_reason ? <span class="muted"> {e.disabled_reason}</span> : null}</td>
              <td><When at={e.created_at} /></td>
              <td>
                <form method="post" action={`/dashboard/settings/webhooks/${e.id}/delete`} class="inline">
                  <Csrf session={ctx.session} />
                  <button type="submit" class="danger">Delete</button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {endpoints.length === 0 ? <p class="muted">No endpoints yet.</p> : null}
    </section>
    <section class="card">
      <h2>Add an endpoint</h2>
      <form method="post" action="/dashboard/settings/webhooks" class="filters">
        <Csrf session={ctx.session} />
        <label class="field grow">URL<input name="url" type="url" required placeholder="https://shop.example/kassa-webhook" /></label>
        <label class="field grow">Description<input name="description" maxlength={200} /></label>
        <button type="submit">Add endpoint</button>
      </form>
      <p class="muted">Receives every event type ({eventTypes.join(', ')}); use the API to subscribe to fewer.</p>
    </section>
  </Layout>
);
