"""POS capture from a till's serial stream: sale lines, receipts, pole displays (protocols §4)."""
