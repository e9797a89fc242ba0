-- Re-authentication for sensitive dashboard actions: when the session's user last proved their
-- password (and second factor, when enabled): at sign-in, or again on the confirmation page.
alter table dashboard_sessions add column reauth_at timestamptz;

-- Per-merchant customer e-mail limit: counts a merchant's e-mails of the last hour.
create index emails_merchant_created on emails (merchant_id, created_at);
