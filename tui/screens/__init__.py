"""ftui's screens: Jobs, Job detail, New run, Devices and Chat."""
