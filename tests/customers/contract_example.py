"""The example request body of CONTRACT.md, shared by the contract and payload tests."""

import json

# The example body of CONTRACT.md, as written there.
EXAMPLE_BODY = json.loads("""
{"customers": [{
  "id": "legacy-000123", "name": "John Smith", "email": "jsmith@example.com",
  "gender": "MALE", "dob": "1990-04-01T00:00:00Z", "registration_date": "2023-11-07T05:31:56Z",
  "status": "ACTIVE", "metadata": {"source": "legacy-crm"},
  "metrics": {
    "lifetime": {"from": "2019-01-01T00:00:00Z", "to": "2025-02-21T14:05:42Z",
                 "tier_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                 "last_visit": "2024-12-10T20:58:01Z", "spend_total": 50.2,
                 "number_of_purchases": 10},
    "updated_at": "2025-02-21T14:05:42Z"},
  "balance": [{"reward_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "amount": 123,
               "expiration_date": "2026-11-07T05:31:56Z", "brand_id": "brand-1",
               "channel_id": "web", "store_id": "store-9",
               "issued_at": "2023-11-07T05:31:56Z", "funded_by": "brand-1"}],
  "devices": [{"device_token": "fcm:abc", "device_info": {"platform": "ios",
               "model": "iPhone15,2", "osVersion": "17.1"},
               "expires_at": "2026-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z"}]
}]}
""")
