"""Serial UHF RFID readers: the R2000 "0xA0" and M100/QM100 "0xBB" module protocols."""
