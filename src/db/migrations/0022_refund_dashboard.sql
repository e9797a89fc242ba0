-- Refunds in the dashboard (docs/refunds.md, "In the dashboard") and the customer's refund e-mails.

-- Four eyes by default: the dashboard user who approves a refund must not be the one who created
-- it. A merchant with a single person handling money (a one-person shop) turns this off.
alter table merchants add column refund_single_person boolean not null default false;

-- Who did what to a refund in the dashboard (created, approved), so the approval can check the
-- creator. Refunds created over the API have no row here: an API key is not a person.
create table refund_dashboard_actions (
  refund_id text not null references refunds(id) on delete cascade,
  merchant_id text not null references merchants(id) on delete cascade,
  action text not null check (action in ('created', 'approved')),
  user_id text not null references dashboard_users(id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (refund_id, action)
);

-- The customer's refund e-mails: the claim link, and the completed refund.
alter table emails drop constraint emails_kind_check;
alter table emails add constraint emails_kind_check check (kind in (
  'payment_detected', 'paid', 'partial_payment', 'expired', 'late_payment', 'refund_claim', 'refund_completed'
));
