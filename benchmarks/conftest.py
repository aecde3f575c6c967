def pytest_benchmark_update_machine_info(config, machine_info):
    import cyoptim

    machine_info["cyoptim_simd"] = str(cyoptim.simd_info())
    machine_info["cyoptim_threads"] = cyoptim.get_num_threads()
