//! Teams Rooms app version from Get-AppxPackage (being written).
