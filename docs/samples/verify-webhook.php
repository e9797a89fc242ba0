<?php
// Verifies a Kassa webhook (Standard Webhooks signature) in plain PHP 7.4+.
// Deploy as the webhook endpoint's script; set KASSA_WEBHOOK_SECRET to the endpoint secret (whsec_…).

function verify_kassa_webhook(string $secret, array $headers, string $rawBody, ?int $now = null): array
{
    $h = array_change_key_case($headers, CASE_LOWER);
    $id = $h['webhook-id'] ?? '';
    $timestamp = $h['webhook-timestamp'] ?? '';
    $signatures = $h['webhook-signature'] ?? '';
    if ($id === '' || $timestamp === '' || $signatures === '') {
        throw new RuntimeException('missing webhook-id, webhook-timestamp or webhook-signature');
    }
    $now = $now ?? time();
    if (!ctype_digit($timestamp) || abs($now - (int) $timestamp) > 300) {
        throw new RuntimeException('timestamp outside the 5 minute window');
    }
    $key = base64_decode(strpos($secret, 'whsec_') === 0 ? substr($secret, 6) : $secret, true);
    $expected = base64_encode(hash_hmac('sha256', $id . '.' . $timestamp . '.' . $rawBody, $key, true));
    foreach (explode(' ', $signatures) as $entry) { // several during a secret rotation
        $parts = explode(',', $entry, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($expected, $parts[1])) {
            return json_decode($rawBody, true, 512, JSON_THROW_ON_ERROR);
        }
    }
    throw new RuntimeException('no valid signature');
}

$raw = file_get_contents('php://input');
try {
    $event = verify_kassa_webhook(getenv('KASSA_WEBHOOK_SECRET'), getallheaders(), $raw);
} catch (Throwable $e) {
    http_response_code(400);
    exit;
}
// Use $event['id'] to ignore redeliveries; fulfil the order on 'invoice.settled'.
error_log('verified ' . $event['id'] . ' ' . $event['type']);
http_response_code(204);
