-- Re-authentication for sensitive dashboard actions: when the session's user last proved their
-- password (and second factor, when enabled): at sign-in, or again on the confirmation page.
alter table dashboard_sessions add column reauth_at timestamptz;
