"""mmdata.datasets"""
