"""A Modbus TCP server from PyPI's pymodbus (not written by this project) holding the
registers of firegrid's built-in profile typical-rcm-4t (docs/modbus.md), for
gateway/tests/modbus.rs.

Usage: python pymodbus_server.py PORT SLAVE LEAKAGE_RAW STATE_CODE_CH0

Only the mapped addresses exist: a read of an unmapped one gets exception 02, as from many
real monitors. Serves until killed.
"""

import asyncio
import sys

from pymodbus.server import StartAsyncTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def main() -> None:
    port, slave, leakage_raw, state0 = (int(a) for a in sys.argv[1:5])
    regs = DataType.REGISTERS
    device = SimDevice(
        id=slave,
        simdata=[
            # 0x0000 residual current (0.1 mA), 0x0001-0x0004 temperature (raw/10 - 50 °C)
            SimData(address=0x00, values=[leakage_raw, 750, 760, 770, 780], datatype=regs),
            # 0x0010-0x0014 state codes
            SimData(address=0x10, values=[state0, 0, 0, 0, 0], datatype=regs),
            # 0x0020-0x0024 set-points: 300 mA, 85.0 °C
            SimData(address=0x20, values=[300, 1350, 1350, 1350, 1350], datatype=regs),
            # 0x0030-0x0035 delay, report, heartbeat, channel enable, buzzer, relay
            SimData(address=0x30, values=[10, 60, 300, 0b11111, 1, 0], datatype=regs),
        ],
    )
    asyncio.run(StartAsyncTcpServer(device, address=("127.0.0.1", port)))


if __name__ == "__main__":
    main()
