-- The live balance below which a partner is sent account.balance_low (cents; NULL: none).
-- Kept beside the balance, so that the debit that crosses it reads it in the same statement.
ALTER TABLE balances ADD COLUMN low_balance_cents INTEGER;
