"""LLRP (EPCglobal Low Level Reader Protocol): fixed UHF RFID readers, Impinj, Zebra."""
