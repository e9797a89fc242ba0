-- Dashboard accounts belong to one merchant: an e-mail address is unique per merchant, not across
-- the deployment. The same person may be a user of two merchants (two separate accounts, each with
-- its own password, second factor, sessions and audit trail). A global constraint made "add user"
-- answer "already exists" for an e-mail another merchant uses, which revealed that merchant's users.
alter table dashboard_users drop constraint dashboard_users_email_key;
alter table dashboard_users add constraint dashboard_users_merchant_email_key unique (merchant_id, email);
-- Sign-in looks up every account with the e-mail.
create index dashboard_users_email on dashboard_users (email);

-- Sign-in when the password was accepted by accounts of several merchants: the "choose the shop"
-- step. Only the accounts that accepted the password are listed; the choice is used once and
-- expires with the second-factor window. Only a SHA-256 of the cookie value is stored.
create table dashboard_login_choices (
  id_hash bytea primary key,
  email text not null,
  user_ids text[] not null check (cardinality(user_ids) >= 2),
  csrf_token text not null,
  ip text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);
create index dashboard_login_choices_expires on dashboard_login_choices (expires_at);
